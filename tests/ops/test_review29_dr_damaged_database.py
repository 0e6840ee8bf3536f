"""A corrupted database file (one of the incidents docs/D1_DISASTER_RECOVERY.md covers): a drill of it failed with
SQLite's own words, "backing up .../db.sqlite failed: database disk image is malformed", and no way out. It now says
that the stack's database is damaged and names the command that lists the backups to restore from."""

from __future__ import annotations

import json

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform


def test_a_drill_of_a_damaged_database_names_the_restore(tmp_path, stack_db, capsys, monkeypatch):
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=200)
    assert main(["dr-drill", "staging", "--home", str(home)]) == 0
    capsys.readouterr()
    data = bytearray(db.read_bytes())
    data[5000:20000] = b"\xff" * 15000   # pages past the header: the file opens, its tables do not read
    db.write_bytes(bytes(data))
    assert main(["dr-drill", "staging", "--home", str(home), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert not result["passed"]
    assert "malformed" in result["error"] and "the stack's database is damaged" in result["error"], result["error"]
    assert "`goldgate dr-restore staging --list`" in result["error"]
    # The backup of the good database is still there to restore (a failed drill deletes nothing).
    assert len(list((home / "backups" / "staging").glob("*.sqlite"))) == 1


def test_a_file_that_is_no_database_says_the_same(tmp_path, stack_db, capsys, monkeypatch):
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    db.write_bytes(b"not a database at all " * 400)
    assert main(["dr-drill", "staging", "--home", str(home)]) == 1
    out = capsys.readouterr().out
    assert "the stack's database is damaged" in out and "goldgate dr-restore staging --list" in out, out
