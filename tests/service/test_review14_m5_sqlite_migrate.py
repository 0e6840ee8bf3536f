"""The local SQLite port and migration runner where no earlier test held them: a write whose request was cancelled
does not stall the others committed with it; foreign keys hold as on D1; a gap in the migration numbers and a
database that ran a migration this checkout lacks are refused by name."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from service.migrate import MigrationError, apply_sqlite
from service.sqlite_database import SqliteDatabase


@pytest.fixture
def db(tmp_path: Path):
    database = SqliteDatabase(tmp_path / "db.sqlite")
    asyncio.run(database.execute("CREATE TABLE hits (id INTEGER PRIMARY KEY, n INTEGER NOT NULL UNIQUE)"))
    yield database
    database.close()


def test_a_write_whose_request_was_cancelled_still_commits_and_its_group_neighbours_get_their_answers(db):
    # A client that hangs up mid-request cancels its task while its write waits for the group commit.
    async def main() -> list[int]:
        gone = asyncio.ensure_future(db.execute("INSERT INTO hits (n) VALUES (1)"))
        stays = [asyncio.ensure_future(db.execute("INSERT INTO hits (n) VALUES (?)", (n,))) for n in (2, 3)]
        await asyncio.sleep(0)  # every write is queued for one commit, which has not run yet
        gone.cancel()
        # a guard against the hang this test is about, not a timing: the commit takes microseconds
        return await asyncio.wait_for(asyncio.gather(*stays), timeout=30)

    assert asyncio.run(main()) == [1, 1]
    rows = asyncio.run(db.query("SELECT n FROM hits ORDER BY n"))
    assert rows == [{"n": 1}, {"n": 2}, {"n": 3}]  # the cancelled write stands, as after a crash


def test_foreign_keys_are_enforced_as_d1_enforces_them(db):
    asyncio.run(db.execute("CREATE TABLE shots (id INTEGER PRIMARY KEY, hit_id INTEGER NOT NULL REFERENCES hits (id))"))
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        asyncio.run(db.execute("INSERT INTO shots (hit_id) VALUES (42)"))
    assert asyncio.run(db.query("SELECT COUNT(*) AS n FROM shots")) == [{"n": 0}]


def test_a_gap_in_the_migration_numbers_is_refused_naming_the_file_and_its_number(tmp_path: Path):
    # 0002 deleted (or not yet pulled): 0003 would run on a schema it was not written for
    (tmp_path / "0001_init.sql").write_text("CREATE TABLE a (x);\n")
    (tmp_path / "0003_more.sql").write_text("ALTER TABLE b ADD COLUMN y;\n")
    conn = sqlite3.connect(":memory:", isolation_level=None)
    with pytest.raises(MigrationError, match=r"migration 0003_more\.sql must be named 0002_"):
        apply_sqlite(conn, tmp_path)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'a'").fetchall() == []


def test_a_database_that_ran_a_migration_this_checkout_lacks_is_refused_naming_it(tmp_path: Path):
    newer, older = tmp_path / "newer", tmp_path / "older"
    newer.mkdir()
    older.mkdir()
    for directory in (newer, older):
        (directory / "0001_init.sql").write_text("CREATE TABLE a (x);\n")
    (newer / "0002_more.sql").write_text("CREATE TABLE b (y);\n")
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    assert apply_sqlite(conn, newer) == ["0001_init.sql", "0002_more.sql"]
    # an older checkout (a rollback of the service) must not run against the newer schema as if it knew it
    with pytest.raises(MigrationError, match=r"records migrations this checkout lacks: 0002_more\.sql"):
        apply_sqlite(conn, older)
    conn.close()


def test_a_migration_that_fails_leaves_no_transaction_open_on_its_connection(tmp_path: Path):
    # The runner's caller may go on with the connection (fix the file, run again); an open transaction would hold
    # the database's write lock and refuse the next BEGIN.
    (tmp_path / "0001_init.sql").write_text("CREATE TABLE a (x);\nINSERT INTO missing VALUES (1);\n")
    db = tmp_path / "db.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        with pytest.raises(MigrationError, match="no such table: missing"):
            apply_sqlite(conn, tmp_path)
        assert not conn.in_transaction
        other = sqlite3.connect(db, isolation_level=None, timeout=0)
        try:
            other.execute("CREATE TABLE unrelated (x)")  # no write lock left behind
        finally:
            other.close()
        (tmp_path / "0001_init.sql").write_text("CREATE TABLE a (x);\n")
        assert apply_sqlite(conn, tmp_path) == ["0001_init.sql"]
    finally:
        conn.close()


def test_a_migration_undone_by_hand_and_reapplied_by_wrangler_is_judged_by_its_new_text(tmp_path: Path):
    # wrangler records only d1_migrations: the checksum of the text this runner applied before belongs to the
    # deleted row, not to the one wrangler wrote, and must not make the new text look edited.
    migration = tmp_path / "0001_init.sql"
    migration.write_text("CREATE TABLE a (x);\n")
    db = tmp_path / "db.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        assert apply_sqlite(conn, tmp_path) == ["0001_init.sql"]
        conn.execute("DROP TABLE a")
        conn.execute("DELETE FROM d1_migrations")
        migration.write_text("CREATE TABLE a (x, y);\n")
        conn.execute("CREATE TABLE a (x, y)")  # what `wrangler d1 migrations apply` runs and records
        conn.execute("INSERT INTO d1_migrations (name) VALUES ('0001_init.sql')")
        assert apply_sqlite(conn, tmp_path) == []
        migration.write_text("CREATE TABLE a (x, y, z);\n")  # and from then on an edit is refused
        with pytest.raises(MigrationError, match=r"0001_init\.sql changed after being applied"):
            apply_sqlite(conn, tmp_path)
    finally:
        conn.close()
