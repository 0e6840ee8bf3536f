"""A local stack's SQLite WAL does not keep its high-water size for ever: once it is reset, the file is cut back to
sqlite_database.WAL_SIZE_LIMIT (bench/soak.py saw it reach 10 MB within minutes and stay there)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

from service.sqlite_database import SqliteDatabase

WAL_SIZE_LIMIT = 4 * 1024 * 1024  # sqlite_database.WAL_SIZE_LIMIT


def test_a_wal_grown_past_the_limit_is_cut_back_once_it_is_checkpointed_and_reset(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    wal = Path(f"{path}-wal")
    db = SqliteDatabase(path)
    try:
        asyncio.run(db.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)"))
        # A reader that holds its snapshot (a long metrics read, a backup) keeps every commit in the WAL meanwhile:
        # no checkpoint can copy past it and no commit can start the WAL again, so the file grows.
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM blobs").fetchone()

        async def fill() -> None:
            for _ in range(WAL_SIZE_LIMIT // 8192 * 3):
                await db.execute("INSERT INTO blobs (body) VALUES (?)", (os.urandom(8000),))

        asyncio.run(fill())
        grown = wal.stat().st_size
        assert grown > 2 * WAL_SIZE_LIMIT  # the situation the bound is for

        reader.execute("COMMIT")
        reader.close()
        checker = sqlite3.connect(path, isolation_level=None)
        # The service's own checkpointer thread may still be copying the WAL (it is asked every 64 commits): SQLite
        # runs one checkpoint at a time and answers busy to another, which then runs again once that one is done.
        deadline = time.monotonic() + 60
        while True:
            busy, frames, copied = checker.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if busy == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        checker.close()
        assert (busy, copied) == (0, frames)  # everything is in the database file now
        asyncio.run(db.execute("DELETE FROM blobs WHERE id = 1"))  # the next commit starts the WAL again

        assert wal.stat().st_size <= WAL_SIZE_LIMIT, (grown, wal.stat().st_size)
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT count(*) FROM blobs").fetchone()[0] == WAL_SIZE_LIMIT // 8192 * 3 - 1
        conn.close()
    finally:
        db.close()
