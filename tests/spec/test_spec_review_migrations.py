"""D1 migrations are cut into statements as SQLite reads them: a migration a developer writes applies the same on
the local SQLite as on D1, and what it writes is what the file says."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.migrations import MigrationError, apply_sqlite, apply_with, discover, split_statements

TOKEN = "cf-migrations-token-0123456789abcdef"
LITERAL_WITH_A_DASH_LINE = ("CREATE TABLE notes (body TEXT NOT NULL DEFAULT 'first line\n"
                            "-- this line is part of the default, not a comment\n"
                            "last line');\n")


def write(directory: Path, name: str, sql: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(sql, encoding="utf-8")
    return directory


def test_two_statements_on_one_line_apply_on_the_local_sqlite(tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", "0001_pair.sql", "-- two tables\nCREATE TABLE a (x); CREATE TABLE b (y);\n")
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    try:
        assert apply_sqlite(conn, migrations) == ["0001_pair.sql"]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert {"a", "b"} <= tables


def test_a_line_of_a_string_literal_that_begins_with_dashes_is_kept(tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", "0001_notes.sql", LITERAL_WITH_A_DASH_LINE)
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    try:
        apply_sqlite(conn, migrations)
        conn.execute("INSERT INTO notes DEFAULT VALUES")
        (body,) = conn.execute("SELECT body FROM notes").fetchone()
    finally:
        conn.close()
    assert body == "first line\n-- this line is part of the default, not a comment\nlast line"


def test_the_same_migration_reaches_d1_intact(tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", "0001_notes.sql", LITERAL_WITH_A_DASH_LINE)
    with D1StandIn(TOKEN) as standin:
        d1 = D1Client(CloudflareApi(TOKEN, standin.api_base), standin.account_id, poll_interval_s=0.0)
        db = d1.create_database("goldgate-test").uuid
        assert apply_with(lambda sql, params: d1.query(db, sql, params), migrations) == ["0001_notes.sql"]
        d1.query(db, "INSERT INTO notes DEFAULT VALUES", [])
        rows = d1.query(db, "SELECT body FROM notes", [])
    assert rows[0]["body"].splitlines()[1] == "-- this line is part of the default, not a comment"


def test_comment_lines_before_a_statement_are_not_part_of_it() -> None:
    assert split_statements("-- the table\n\n-- and why\nCREATE TABLE t (\n  -- a column\n  x TEXT\n);\n") == [
        "CREATE TABLE t (\n  -- a column\n  x TEXT\n)"]


def test_the_shipped_migrations_still_split_into_their_statements() -> None:
    for migration in discover():
        statements = split_statements(migration.sql)
        assert statements and all(s and not s.startswith("--") and sqlite3.complete_statement(s + ";")
                                  for s in statements), migration.name


def test_a_migration_cut_off_mid_statement_is_named() -> None:
    with pytest.raises(MigrationError, match="incomplete SQL statement"):
        split_statements("CREATE TABLE t (x TEXT);\nCREATE TABLE u (\n")


def test_the_local_sqlite_refuses_an_applied_migration_edited_later_as_d1_does(tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", "0001_pair.sql", "CREATE TABLE a (x);\n")
    db = tmp_path / "db.sqlite"
    assert apply_sqlite(db, migrations) == ["0001_pair.sql"]
    write(migrations, "0001_pair.sql", "CREATE TABLE a (x, y);\n")
    write(migrations, "0002_more.sql", "CREATE TABLE b (z);\n")
    with pytest.raises(MigrationError, match="0001_pair.sql changed after being applied.*add a new migration"):
        apply_sqlite(db, migrations)
    conn = sqlite3.connect(db)
    try:
        assert [r[0] for r in conn.execute("SELECT name FROM d1_migrations")] == ["0001_pair.sql"]  # nothing ran
    finally:
        conn.close()



def undo_by_hand(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE a")
        conn.execute("DELETE FROM d1_migrations")
    conn.close()


def test_a_migration_undone_by_hand_runs_again_with_its_new_text_and_that_text_is_guarded(tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", "0001_pair.sql", "CREATE TABLE a (x);\n")
    db = tmp_path / "db.sqlite"
    apply_sqlite(db, migrations)
    undo_by_hand(db)
    write(migrations, "0001_pair.sql", "CREATE TABLE a (x, y);\n")
    assert apply_sqlite(db, migrations) == ["0001_pair.sql"]  # the record of its old text does not block it
    write(migrations, "0001_pair.sql", "CREATE TABLE a (x, y, z);\n")
    with pytest.raises(MigrationError, match="0001_pair.sql changed after being applied"):
        apply_sqlite(db, migrations)


def test_a_migration_wrangler_applied_again_after_an_undo_is_not_measured_against_its_old_text(tmp_path) -> None:
    # wrangler writes d1_migrations and records no sha256: done here by hand, as wrangler does it.
    migrations = write(tmp_path / "m", "0001_pair.sql", "CREATE TABLE a (x);\n")
    db = tmp_path / "db.sqlite"
    apply_sqlite(db, migrations)
    undo_by_hand(db)
    write(migrations, "0001_pair.sql", "CREATE TABLE a (x, y);\n")
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("CREATE TABLE a (x, y)")
        conn.execute("INSERT INTO d1_migrations (name) VALUES ('0001_pair.sql')")
    finally:
        conn.close()
    write(migrations, "0002_more.sql", "CREATE TABLE b (z);\n")
    assert apply_sqlite(db, migrations) == ["0002_more.sql"]


def test_a_migration_cut_off_mid_statement_is_named_and_leaves_the_database_unlocked(tmp_path) -> None:
    migrations = write(tmp_path / "m", "0001_pair.sql", "CREATE TABLE a (x);\n")
    write(migrations, "0002_cut.sql", "CREATE TABLE b (y);\nCREATE TABLE c (z\n")
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    try:
        with pytest.raises(MigrationError, match=r"^0002_cut.sql: .*incomplete"):
            apply_sqlite(conn, migrations)
        assert not conn.in_transaction  # the caller's connection does not keep the write lock
        assert [r[0] for r in conn.execute("SELECT name FROM d1_migrations")] == ["0001_pair.sql"]
    finally:
        conn.close()
