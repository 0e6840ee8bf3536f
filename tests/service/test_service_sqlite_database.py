"""The local SQLite adapter: D1 rules, group commit (concurrent writes share one transaction, a bad
write fails alone) and checkpoints on their own thread."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from service.ports import Statement
from service.sqlite_database import SqliteDatabase


@pytest.fixture
def db(tmp_path: Path):
    database = SqliteDatabase(tmp_path / "db.sqlite")
    asyncio.run(database.execute("CREATE TABLE hits (id INTEGER PRIMARY KEY, n INTEGER NOT NULL UNIQUE)"))
    yield database
    database.close()


def _count(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM hits").fetchone()[0]
    finally:
        conn.close()


def test_concurrent_writes_all_commit_and_each_gets_its_own_result(db: SqliteDatabase):
    async def main() -> list[int]:
        return await asyncio.gather(*[db.execute("INSERT INTO hits (n) VALUES (?)", (i,)) for i in range(50)])

    assert asyncio.run(main()) == [1] * 50
    assert _count(db.path) == 50  # committed: another connection sees every row


def test_a_failing_write_fails_alone_and_its_neighbours_commit(db: SqliteDatabase):
    async def main() -> list:
        return await asyncio.gather(
            db.batch([Statement("INSERT INTO hits (n) VALUES (1)"), Statement("INSERT INTO hits (n) VALUES (2)")]),
            db.batch([Statement("INSERT INTO hits (n) VALUES (3)"), Statement("INSERT INTO hits (n) VALUES (1)")]),
            db.execute("INSERT INTO hits (n) VALUES (4)"),
            return_exceptions=True)

    first, second, third = asyncio.run(main())
    assert [r.changes for r in first] == [1, 1] and third == 1
    assert isinstance(second, sqlite3.IntegrityError)
    # the failing batch is one transaction: its first insert (n = 3) was rolled back with it
    assert asyncio.run(db.query("SELECT n FROM hits ORDER BY n")) == [{"n": 1}, {"n": 2}, {"n": 4}]


def test_writes_in_one_group_see_each_other_in_order(db: SqliteDatabase):
    async def main() -> list[int]:
        await db.execute("INSERT INTO hits (n) VALUES (0)")
        # compare-and-set from two requests at once: exactly one wins, as with separate commits
        return await asyncio.gather(*[db.execute("UPDATE hits SET n = n + 1 WHERE n = 0") for _ in range(5)])

    assert sorted(asyncio.run(main())) == [0, 0, 0, 0, 1]


def test_transaction_statements_are_refused_like_d1(db: SqliteDatabase):
    with pytest.raises(ValueError, match="Database.batch"):
        asyncio.run(db.execute("BEGIN"))
    with pytest.raises(ValueError, match="Database.batch"):
        asyncio.run(db.batch([Statement("INSERT INTO hits (n) VALUES (1)"), Statement("COMMIT")]))
    assert _count(db.path) == 0


def test_commits_never_checkpoint_inline_and_close_leaves_every_row_in_the_file(tmp_path: Path):
    db = SqliteDatabase(tmp_path / "db.sqlite")

    async def main() -> None:
        await db.execute("CREATE TABLE hits (id INTEGER PRIMARY KEY, n INTEGER NOT NULL UNIQUE)")
        for i in range(300):  # sequential: one commit each, several checkpoint requests
            await db.execute("INSERT INTO hits (n) VALUES (?)", (i,))

    asyncio.run(main())
    assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # never inside a commit
    db.close()
    plain = sqlite3.connect(tmp_path / "db.sqlite")
    try:
        assert plain.execute("SELECT COUNT(*) FROM hits").fetchone()[0] == 300
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        plain.close()


def test_a_write_after_close_fails_with_a_clear_error(tmp_path: Path):
    db = SqliteDatabase(tmp_path / "db.sqlite")
    db.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        asyncio.run(db.execute("CREATE TABLE t (x)"))


_SLOW_COUNT = ("WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 200000) "
               "SELECT COUNT(*) AS n FROM hits WHERE (SELECT COUNT(*) FROM r) > 0")


def test_read_many_answers_each_statement_in_order(db: SqliteDatabase):
    async def main() -> list[list[dict]]:
        await db.batch([Statement("INSERT INTO hits (n) VALUES (?)", (i,)) for i in range(10)])
        statements = [Statement("SELECT n FROM hits WHERE n % ? = 0 ORDER BY n", (k,)) for k in range(1, 8)]
        return await db.read_many(statements)

    answers = asyncio.run(main())
    assert [[row["n"] for row in rows] for rows in answers] == [
        [n for n in range(10) if n % k == 0] for k in range(1, 8)]


def test_read_many_reads_one_snapshot_while_a_write_commits(db: SqliteDatabase):
    async def main() -> tuple[list[list[dict]], list[dict]]:
        await db.execute("INSERT INTO hits (n) VALUES (0)")
        reads = asyncio.ensure_future(db.read_many([Statement(_SLOW_COUNT)] * 4 + [Statement(
            "SELECT COUNT(*) AS n FROM hits")]))
        await asyncio.sleep(0)  # read_many has begun: its snapshot is taken
        await db.execute("INSERT INTO hits (n) VALUES (1)")  # commits while the scans run
        return await reads, await db.query("SELECT COUNT(*) AS n FROM hits")

    answers, after = asyncio.run(main())
    assert [rows[0]["n"] for rows in answers] == [1] * 5  # every statement, even the last to start
    assert after == [{"n": 2}]


def test_read_many_refuses_transactions_and_a_closed_database(tmp_path: Path):
    db = SqliteDatabase(tmp_path / "db.sqlite")
    with pytest.raises(ValueError, match="Database.batch"):
        asyncio.run(db.read_many([Statement("BEGIN")]))
    db.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        asyncio.run(db.read_many([Statement("SELECT 1")]))


def test_the_local_database_refuses_what_d1_refuses(db: SqliteDatabase):
    """D1 refuses a value or row over 2,000,000 bytes and more than 100 bound parameters; SQLite's defaults
    take 1 GB and 32766. A write that only D1 refused passed every local run and failed first in production."""
    asyncio.run(db.execute("CREATE TABLE notes (body TEXT)"))
    with pytest.raises(sqlite3.DataError, match="string or blob too big"):
        asyncio.run(db.execute("INSERT INTO notes (body) VALUES (?)", ("x" * 2_000_001,)))
    with pytest.raises(sqlite3.OperationalError, match="too many SQL variables"):
        asyncio.run(db.query("SELECT " + ", ".join(["?"] * 101), tuple(range(101))))
    with pytest.raises(sqlite3.DataError, match="string or blob too big"):  # read_many's connections too
        asyncio.run(db.read_many([Statement("SELECT length(?) AS n", ("x" * 2_000_001,))]))
    assert asyncio.run(db.execute("INSERT INTO notes (body) VALUES (?)", ("x" * 1_999_000,))) == 1
    assert asyncio.run(db.query("SELECT " + " + ".join(["?"] * 100) + " AS total", tuple(range(100)))) == [
        {"total": 4950}]
