"""When a missing or empty database file is a lost one, judged on a stopped stack's files alone (session 28 mutation
audit of LocalPlatform.lost_database and StackDir.ran_before).

Session 27's tests judged a lost database through `up` on homes whose service had run (its record, its log): the
other signs a stack ran before (a rescued copy, a backup), the empty service log of a start that never served, an
empty file in the database's place, and a database of another program's all went unchecked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from stackfiles import stacks_file

from goldgate.errors import StateError
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

STACK = "staging"


def _stack(home: Path) -> tuple[LocalPlatform, StackDir]:
    platform = LocalPlatform(home, stacks_file(home))
    d = StackDir(platform.home, STACK)
    d.db_path.parent.mkdir(parents=True, exist_ok=True)
    return platform, d


def test_a_stack_never_started_has_lost_nothing(home):
    platform, d = _stack(home)
    assert platform.lost_database(STACK) is None
    d.logs_dir.mkdir(parents=True, exist_ok=True)
    (d.logs_dir / "service.jsonl").touch()   # a start whose service never wrote a line
    assert platform.lost_database(STACK) is None


def test_a_backup_alone_says_the_stack_ran_before(home):
    platform, d = _stack(home)
    backups = home / "backups" / STACK
    backups.mkdir(parents=True)
    (backups / "20261130T000000.000000Z.sqlite").write_bytes(b"a backup")
    lost = platform.lost_database(STACK)
    assert lost is not None and f"{d.db_path} is missing" in lost and f"dr-restore {STACK} --list" in lost, lost
    with pytest.raises(StateError):
        platform.require_migrated(STACK)


def test_a_rescued_copy_alone_says_the_stack_ran_before_and_is_named(home):
    platform, d = _stack(home)
    copy = d.root / "db.sqlite.rescued-20261130T000000Z"
    copy.write_bytes(b"the deleted database, saved by its service")
    lost = platform.lost_database(STACK)
    assert lost is not None and f"{copy} (restore from the newest)" in lost, lost


def test_a_directory_named_like_a_rescued_copy_is_no_copy(home):
    platform, d = _stack(home)
    (d.root / "db.sqlite.rescued-20261130T000000Z").mkdir()
    d.record_database()
    lost = platform.lost_database(STACK)
    assert lost is not None and "no copy the service saved of it" in lost, lost


def test_an_empty_file_in_the_place_of_a_database_that_ran_is_lost_and_one_with_tables_is_not(home):
    platform, d = _stack(home)
    d.record_database()
    d.db_path.write_bytes(b"")           # `touch db.sqlite` after the file was deleted
    lost = platform.lost_database(STACK)
    assert lost is not None and "has no tables" in lost, lost
    conn = sqlite3.connect(d.db_path)
    conn.execute("CREATE TABLE jobs (id TEXT)")
    conn.close()
    assert platform.lost_database(STACK) is None


def test_a_database_no_goldgate_migrated_is_refused_as_such_not_as_an_older_one(home):
    platform, d = _stack(home)
    conn = sqlite3.connect(d.db_path)
    conn.execute("CREATE TABLE notes (body TEXT)")   # another program's database in the stack's place
    conn.close()
    with pytest.raises(StateError) as caught:
        platform.require_migrated(STACK)
    message = str(caught.value)
    assert "is not a migrated goldgate database (no d1_migrations table)" in message, message
    assert f"goldgate up {STACK}" in message and "predates" not in message


def test_a_stack_that_came_up_once_keeps_its_record_when_its_logs_are_cleared(home):
    # The host records the database it created: clearing logs/ (as an operator tidying up would) must not turn a
    # deleted database into a stack's first start
    platform, d = _stack(home)
    platform.up(STACK)
    platform.down(STACK)
    for log in d.logs_dir.iterdir():
        log.unlink()
    d.db_path.unlink()
    with pytest.raises(StateError) as caught:
        platform.up(STACK)
    assert "though the stack has run before" in str(caught.value)
    assert not d.db_path.exists()
