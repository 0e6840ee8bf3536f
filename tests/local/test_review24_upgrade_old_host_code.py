"""A stack whose host an older goldgate started, still running after an upgrade (git pull, pip install).

A running host keeps the code it started with until it restarts. Where the upgrade added no migration, nothing
else gives it away: `goldgate up` said "already up" and that stacks/local.yaml had changed (it had not: the older
host measured its section with an older StackSpec), and `status` said the same, or nothing at all when the host
was older still. The state is fabricated as such a host wrote it: state.json without the code record this
checkout's hosts keep, and a section fingerprint of another shape.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands import local
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir, write_json_atomic

RESTART = "`goldgate down staging && goldgate up staging` runs this checkout's"
ADDED = "0002_idempotency_keys.sql"


def _as_an_older_host_wrote_it(state_file: Path) -> None:
    """state.json as a host of an older goldgate writes it: no code record, its own measure of the section."""
    state = json.loads(state_file.read_text())
    state.pop("code", None)
    state["spec_fingerprint"] = hashlib.sha256(b"an older StackSpec").hexdigest()
    write_json_atomic(state_file, state)


def test_a_host_an_older_goldgate_started_is_named_by_up_and_status_with_the_restart(home: Path, capsys) -> None:
    platform = LocalPlatform(home, stacks_file(home))
    platform.up("staging")
    _as_an_older_host_wrote_it(StackDir(home, "staging").state_file)

    said: list[str] = []
    platform.up("staging", said.append)
    assert said[0] == "staging: already up" and len(said) == 2, said
    assert "local.yaml changed" not in said[1], said  # the stacks file is as it was
    assert said[1].startswith("staging: its host was started by an older goldgate, whose code it still runs")
    assert RESTART in said[1]

    status = platform.status("staging")
    assert status.running and not status.spec_changed
    assert status.code_changed == said[1].removeprefix("staging: ")
    shown = local._render_status(status.to_dict())
    assert f"  {'code':<22} its host was started by an older goldgate" in shown, shown
    assert "stacks file section changed" not in shown, shown
    main(["status", "staging", "--home", str(home), "--json"])
    assert json.loads(capsys.readouterr().out)["code_changed"] == status.code_changed

    platform.down("staging")
    said.clear()
    assert platform.up("staging", said.append).code_changed is None  # the restart runs this checkout's code
    platform.up("staging", said.append)
    assert said[-1] == "staging: already up", said
    platform.down("staging")


def test_status_of_an_older_host_on_an_older_database_names_the_migrations_the_restart_applies(home: Path) -> None:
    platform = LocalPlatform(home, stacks_file(home))
    platform.up("staging")
    _as_an_older_host_wrote_it(StackDir(home, "staging").state_file)
    with sqlite3.connect(platform.db_path("staging")) as conn:  # the database as it was before migration 0002
        conn.execute("DROP TABLE idempotency_keys")
        conn.execute("DELETE FROM d1_migrations WHERE name = ?", (ADDED,))
    conn.close()

    said = platform.status("staging").code_changed
    assert said is not None and f"on a database without this checkout's migrations {ADDED}; {RESTART}" in said
    platform.down("staging")
    platform.up("staging")
    assert platform.status("staging").code_changed is None
    platform.down("staging")


def test_a_host_whose_code_the_checkout_changed_since_it_started_is_named_with_the_files(home: Path) -> None:
    platform = LocalPlatform(home, stacks_file(home))
    platform.up("staging")
    state_file = StackDir(home, "staging").state_file
    state = json.loads(state_file.read_text())
    # What the host runs: the modules it loaded (its own, the emulators') and the service it starts as a child.
    assert {"goldgate/local/stackhost.py", "goldgate/local/runpod/emulator.py", "service/app.py",
            "service/routes.py"} <= state["code"].keys()
    assert platform.status("staging").code_changed is None

    # The host read these files before an upgrade changed them (and the second is gone from the checkout).
    state["code"]["goldgate/local/stackhost.py"] = hashlib.sha256(b"the stack host as it was").hexdigest()
    state["code"]["service/retired.py"] = hashlib.sha256(b"a module the upgrade removed").hexdigest()
    write_json_atomic(state_file, state)
    said = platform.status("staging").code_changed
    assert said is not None and said.startswith(
        "its host runs the goldgate code it started with, which this checkout has changed since "
        "(goldgate/local/stackhost.py, service/retired.py: an upgrade, or an edit); " + RESTART), said
    platform.down("staging")
