"""The database file deleted right after the service started, before it wrote anything: the rescue copy is still
saved (it was taken from the write connection, which had never read the file, and failed "disk I/O error")."""

from __future__ import annotations

import asyncio
import os
import sqlite3

from service_testkit import migrate

from service.ports import StorageGone
from service.sqlite_database import SqliteDatabase


def test_a_database_deleted_before_any_write_is_still_rescued(tmp_path):
    db_path = tmp_path / "db.sqlite"
    migrate(db_path)
    seed = sqlite3.connect(db_path)
    seed.execute("CREATE TABLE kept (v TEXT)")
    seed.execute("INSERT INTO kept VALUES ('the job before the restart')")
    seed.commit()
    seed.close()
    db = SqliteDatabase(db_path)  # a restart: the service opens the file and writes nothing
    try:
        os.unlink(db_path)
        try:
            asyncio.run(db.execute("INSERT INTO kept VALUES ('refused')"))
        except StorageGone:
            pass
        rescued, why = db.rescue_copy()
        assert why is None and rescued is not None, why
        copy = sqlite3.connect(rescued)
        try:
            assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert copy.execute("SELECT v FROM kept").fetchall() == [("the job before the restart",)]
        finally:
            copy.close()
    finally:
        db.close()
