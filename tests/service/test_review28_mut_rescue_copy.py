"""The copy a service saves of its deleted database (session 28 mutation audit of SqliteDatabase.rescue_copy): it
is the owner's only and one self-contained file, and a copy that failed leaves no file behind (`goldgate up` and
`status` name every `db.sqlite.rescued-*` as the copy to restore from)."""

from __future__ import annotations

import os
import sqlite3
import stat
from typing import Any

from service_testkit import migrate

from service.sqlite_database import SqliteDatabase


class _BrokenBackup:
    """The service's connection, whose backup fails part way (a full disk)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def backup(self, target: sqlite3.Connection, **_: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_the_copy_is_the_owners_only_and_one_self_contained_file(tmp_path):
    db_path = tmp_path / "service.sqlite"
    migrate(db_path)
    db = SqliteDatabase(db_path)
    try:
        os.unlink(db_path)
        rescued, why = db.rescue_copy()
        assert why is None and rescued is not None, why
    finally:
        db.close()
    assert stat.S_IMODE(os.stat(rescued).st_mode) == 0o600
    conn = sqlite3.connect(rescued)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("SELECT count(*) FROM d1_migrations").fetchone()[0] > 0
    finally:
        conn.close()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(f"{db_path.name}.rescued-")] == [
        os.path.basename(rescued)]
    assert not os.path.exists(f"{rescued}-wal")


def test_a_copy_that_failed_leaves_no_file_to_be_taken_for_the_rescue_and_is_not_tried_again(tmp_path):
    db_path = tmp_path / "service.sqlite"
    migrate(db_path)
    db = SqliteDatabase(db_path)
    real = db.conn
    db.conn = _BrokenBackup(real)  # type: ignore[assignment]
    try:
        os.unlink(db_path)
        rescued, why = db.rescue_copy()
        assert rescued is None and why is not None and "database or disk is full" in why, why
        assert not list(tmp_path.glob("service.sqlite.rescued-*"))
        db.conn = real
        assert db.rescue_copy() == (None, why)   # the same answer: saved or not, once
        assert not list(tmp_path.glob("service.sqlite.rescued-*"))
    finally:
        db.conn = real
        db.close()
