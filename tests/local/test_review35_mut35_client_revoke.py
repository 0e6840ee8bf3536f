"""Gaps a mutation audit of goldgate/local/client_tokens.py found in `goldgate client revoke|list`: revoke removes a
client's file that is a symbolic link (dangling, or to a directory) without following it, refuses a directory in
words and leaves it, and list shows when each file was written (today, not 1970)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

from test_review34_clients_cli import _clients, _run


def _add(capsys, home) -> None:
    assert _run(capsys, home, "add", "alice", "--stack", "staging")[0] == 0


def test_revoke_removes_a_dangling_link_and_a_link_to_a_directory_never_what_it_points_at(tmp_path, capsys) -> None:
    home = tmp_path / "home"
    _add(capsys, home)
    clients = _clients(home)
    (clients / "gone").symlink_to(tmp_path / "no-such-file")
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "data").write_text("not goldgate's")
    (clients / "linked").symlink_to(kept)
    for name in ("gone", "linked"):
        code, _, err = _run(capsys, home, "revoke", name, "--stack", "staging")
        assert code == 0, err
        assert not os.path.lexists(clients / name) and f"client {name} revoked" in err
    assert (kept / "data").read_text() == "not goldgate's"


def test_revoke_refuses_a_directory_in_words_and_leaves_it(tmp_path, capsys) -> None:
    home = tmp_path / "home"
    _add(capsys, home)
    (_clients(home) / "adir").mkdir()
    code, _, err = _run(capsys, home, "revoke", "adir", "--stack", "staging")
    assert code == 1 and "is a directory, not a client's token file: remove it by hand" in err, err
    assert (_clients(home) / "adir").is_dir() and "Traceback" not in err


def test_list_says_when_each_client_was_written(tmp_path, capsys) -> None:
    home = tmp_path / "home"
    _add(capsys, home)
    code, out, _ = _run(capsys, home, "list", "--stack", "staging", "--json")
    (client,) = json.loads(out)["clients"]
    written = datetime.strptime(client["written_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert code == 0 and abs(datetime.now(UTC) - written) < timedelta(minutes=5), client
