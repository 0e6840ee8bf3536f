"""The local restore procedure of docs/D1_DISASTER_RECOVERY.md, run as the document writes it: each command of
its "### Local" block through the real CLI, in a temp home, after the stack's database was destroyed."""

from __future__ import annotations

import re
import shlex
import sqlite3
from pathlib import Path

from goldgate.cli import main
from goldgate.commands.local import ApiClient
from goldgate.local.platform import LocalPlatform
from goldgate.ops.backup import load_manifest
from goldgate.ops.fingerprint import SqliteSource, fingerprint

DOC = Path(__file__).resolve().parents[2] / "docs" / "D1_DISASTER_RECOVERY.md"


def _local_procedure() -> list[list[str]]:
    """The commands of the first ```sh block under "### Local", comments dropped."""
    section = DOC.read_text(encoding="utf-8").split("### Local", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    return [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.split("#", 1)[0].strip()]


def _as_written(argv: list[str], home: Path) -> list[str]:
    """The document's command for this home: `${GOLDGATE_HOME:-.goldgate}/` paths under it (as the shell expands
    them with GOLDGATE_HOME set), `<stamp>` the backup the drill took."""
    out = []
    for arg in argv[1:]:
        assert not arg.startswith(".goldgate/"), f"{arg}: a runnable command names ${{GOLDGATE_HOME:-.goldgate}}"
        if arg.startswith("${GOLDGATE_HOME:-.goldgate}/"):
            arg = str(home / arg.removeprefix("${GOLDGATE_HOME:-.goldgate}/"))
            if "<stamp>" in arg:
                backups = sorted(Path(arg).parent.glob("*.sqlite"))
                assert len(backups) == 1, backups
                arg = str(backups[0])
        out.append(arg)
    return [*out, "--home", str(home)]


def _a_job_waiting_for_its_webhook(db: Path) -> str:
    job_id = "0f" * 16
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TEMP TABLE waiting AS SELECT * FROM jobs LIMIT 1")
        conn.execute("UPDATE waiting SET id = ?, status = 'queued', runpod_job_id = 'rp-in-flight', "
                     "finished_at = NULL, results_json = NULL", (job_id,))
        conn.execute("INSERT INTO jobs SELECT * FROM waiting")
    conn.close()
    return job_id


def test_the_documented_local_restore_brings_back_a_destroyed_database(tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    platform = LocalPlatform(home)
    db = stack_db(platform.db_path("staging"), jobs=300, fail_every=30)
    in_flight = _a_job_waiting_for_its_webhook(db)
    assert main(["dr-drill", "staging", "--home", str(home)]) == 0   # the scheduled drill: the last backup
    steps = _local_procedure()
    assert [s[:2] for s in steps] == [["goldgate", "dr-restore"], ["goldgate", "stuck"], ["goldgate", "down"],
                                      ["goldgate", "dr-restore"], ["goldgate", "up"]]
    db.write_bytes(b"not a database any more")   # the disaster, after the last backup
    try:
        for argv in steps:
            if argv[1] == "stuck":   # nothing is in flight to wait for on a destroyed database: it says so
                assert main(_as_written(argv, home)) != 0
                continue
            assert main(_as_written(argv, home)) == 0, argv
        backup = next((home / "backups" / "staging").glob("*.sqlite"))
        conn = sqlite3.connect(db)
        try:
            restored = fingerprint(SqliteSource(conn))
        finally:
            conn.close()
        assert restored.differences(load_manifest(backup).fingerprint) == []
        api = ApiClient(platform, "staging")  # the stack serves the restored jobs again
        try:
            assert api.call("GET", "/api/metrics")["overall"]["count"] == 300
        finally:
            api.close()
        said = capsys.readouterr()
        assert "the previous database is kept at" in said.out
        # the job the backup holds as queued: `up` names it, and `goldgate recover` settles it, as the doc says
        assert in_flight in said.err
        assert main(["recover", in_flight, "--stack", "staging", "--home", str(home), "--json"]) == 0
        assert '"status": "failed"' in capsys.readouterr().out
        # the text form says why: RunPod forgot the job when the stack stopped
        assert main(["recover", in_flight, "--stack", "staging", "--home", str(home)]) == 0
        said = capsys.readouterr().out.splitlines()
        assert said[0].startswith(f"{in_flight}: failed (") and said[1].startswith("  error: "), said
    finally:
        platform.down("staging")
