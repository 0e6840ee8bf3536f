"""Review 29 (local2): `goldgate up` of a stack whose database file SQLite cannot read said only `stack staging failed
to start: DatabaseError: file is not a database` (or `database disk image is malformed`), with no way out. It now
names it: restore a verified backup (`goldgate dr-restore <stack> --list`, docs/D1_DISASTER_RECOVERY.md, "Local")."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from stackfiles import stacks_file

from goldgate.commands.local import ensure_up
from goldgate.errors import StateError
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

STACK = "staging"


def _garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 64)   # no SQLite header: "file is not a database"


def _malformed(path: Path) -> None:
    """A SQLite file whose first page (the schema) was overwritten: "database disk image is malformed"."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\x55" * (4096 - 100)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("damage", "words"), [(_garbage, "file is not a database"),
                                               (_malformed, "database disk image is malformed")])
def test_up_on_a_damaged_database_names_the_backups_to_restore(home: Path, damage, words: str) -> None:
    platform = LocalPlatform(home, stacks_file(home))
    d = StackDir(home, STACK)
    d.root.mkdir(parents=True, exist_ok=True)
    damage(d.db_path)
    before = d.db_path.read_bytes()
    try:
        with pytest.raises(StateError) as refused:
            ensure_up(platform, STACK)
    finally:
        platform.down(STACK)
    said = str(refused.value)
    assert said.startswith(f"stack {STACK} failed to start: DatabaseError: {words}"), said
    assert f"`goldgate dr-restore {STACK} --list` lists the backups" in said, said
    assert f"`goldgate dr-restore {STACK} --backup <file>`" in said and "docs/D1_DISASTER_RECOVERY.md, \"Local\"" in said
    assert str(d.db_path) in said
    assert d.db_path.read_bytes() == before   # the damaged file is left as it was, for the restore to keep aside
