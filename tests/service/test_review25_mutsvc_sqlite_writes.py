"""How the local database takes writes and reports refusals (service/sqlite_database.py), in process.

A write that finds the lock taken is tried again from the event loop until the busy timeout has passed since
its group first found it taken. Each time the lock is met anew the wait starts anew: a lock that came back
(the next `goldgate prune` batch, a shell opening another transaction) longer than the busy timeout after
the first one was met is waited for again, not refused at once. And the connection itself never waits inside
SQLite, even after a group of writes failed and its writes ran one by one (which wait there, briefly): a wait
inside SQLite stops the event loop and every request with it. The refusal GET /healthz reports is cleared
only by a write taken, not by one that failed for its own reason."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.ports import StorageFull
from service.sqlite_database import SqliteDatabase

BUSY_TIMEOUT_MS = 60_000


class _SkewedLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock the test moves on: the busy timeout passes without waiting for it."""

    skew = 0.0

    def time(self) -> float:
        return super().time() + self.skew


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "service.sqlite", busy_timeout_ms=BUSY_TIMEOUT_MS)
    yield database
    database.close()


async def _write_through_a_lock(db: SqliteDatabase) -> int:
    """One write that meets another connection's write lock, which is released while the write waits."""
    other = sqlite3.connect(db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        write = asyncio.ensure_future(db.execute("INSERT INTO t VALUES (1)"))
        for _ in range(5):
            await asyncio.sleep(0)  # the write's group runs, finds the lock taken and waits on the loop
        assert not write.done(), "a write that met the lock was answered before the lock was released"
    finally:
        other.execute("ROLLBACK")
        other.close()
    return await write


def test_a_lock_met_again_after_the_busy_timeout_is_waited_for_again(db: SqliteDatabase) -> None:
    loop = _SkewedLoop()
    try:
        loop.run_until_complete(db.execute("CREATE TABLE t (a INTEGER)"))
        assert loop.run_until_complete(_write_through_a_lock(db)) == 1
        loop.skew += BUSY_TIMEOUT_MS / 1000 + 1  # the next lock comes more than the busy timeout later
        assert loop.run_until_complete(_write_through_a_lock(db)) == 1
    finally:
        loop.close()
    assert db.last_write_refusal is None


def test_the_connection_never_waits_inside_sqlite_after_a_group_was_run_write_by_write(
        db: SqliteDatabase) -> None:
    async def a_bad_write_among_good_ones() -> list[object]:
        await db.execute("CREATE TABLE t (a INTEGER)")
        return await asyncio.gather(db.execute("INSERT INTO t VALUES (1)"), db.execute("INSERT INTO nowhere VALUES (1)"),
                                    db.execute("INSERT INTO t VALUES (2)"), return_exceptions=True)

    assert _waits_inside_sqlite_ms(db) == 0, "a fresh connection would stop the loop at its first lock"
    loop = asyncio.new_event_loop()
    try:
        answers = loop.run_until_complete(a_bad_write_among_good_ones())
    finally:
        loop.close()
    assert answers[0] == 1 and answers[2] == 1 and isinstance(answers[1], sqlite3.OperationalError), answers
    # Each write of the failed group ran alone, waiting for a lock inside SQLite; the connection is left as it
    # was: one that waited there on its next lock would stop the event loop for up to the busy timeout.
    assert _waits_inside_sqlite_ms(db) == 0


def _waits_inside_sqlite_ms(db: SqliteDatabase) -> int:
    """How long the service's connection would wait inside SQLite for a lock (with the event loop stopped)."""
    return db.conn.execute("PRAGMA busy_timeout").fetchone()[0]


def test_a_write_failing_for_its_own_reason_does_not_clear_the_refusal_healthz_reports(
        db: SqliteDatabase) -> None:
    """GET /healthz reports the last refused write until a write is taken again. A write that failed on its own
    (a bad statement) was taken by no database: the full database is still full."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(db.execute("CREATE TABLE t (a BLOB)"))
        pages = db.conn.execute("PRAGMA page_count").fetchone()[0]
        db.conn.execute(f"PRAGMA max_page_count = {pages}")  # full: no page more
        with pytest.raises(StorageFull):
            loop.run_until_complete(db.execute("INSERT INTO t VALUES (zeroblob(100000))"))
        assert db.last_write_refusal is not None and db.last_write_refusal.code == "storage_full"
        with pytest.raises(sqlite3.OperationalError):
            loop.run_until_complete(db.execute("INSERT INTO nowhere VALUES (1)"))
        assert db.last_write_refusal is not None and db.last_write_refusal.code == "storage_full"
        db.conn.execute("PRAGMA max_page_count = 1073741823")  # room made: the next write is taken
        loop.run_until_complete(db.execute("INSERT INTO t VALUES (zeroblob(100000))"))
        assert db.last_write_refusal is None
    finally:
        loop.close()
