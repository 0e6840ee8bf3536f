"""The local service's migration runner keeps goldgate's record of the text each migration ran with, in
the same table and the same transaction, and refuses the same edits: a database either runner migrated is
trusted by the other, and an applied migration edited later is refused by both, by name."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from goldgate import migrations as goldgate_migrations
from service import migrate

EDITED = "0001_notes.sql changed after being applied"


def write(directory: Path, name: str, sql: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(sql, encoding="utf-8")
    return directory


def by_service(db: Path, directory: Path) -> list[str]:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        return migrate.apply_sqlite(conn, directory)
    finally:
        conn.close()


def by_goldgate(db: Path, directory: Path) -> list[str]:
    return goldgate_migrations.apply_sqlite(db, directory)


RUNNERS: dict[str, Callable[[Path, Path], list[str]]] = {"service": by_service, "goldgate": by_goldgate}


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def refusals(db: Path, directory: Path) -> dict[str, str]:
    """What each runner says on `db`: its error, or what it applied."""
    said = {}
    for name, run in RUNNERS.items():
        try:
            said[name] = f"applied {run(db, directory)}"
        except (migrate.MigrationError, goldgate_migrations.MigrationError) as exc:
            said[name] = str(exc)
    return said


def test_both_runners_define_the_same_tables() -> None:
    assert migrate.TRACKING_TABLE_SQL == goldgate_migrations.TRACKING_TABLE_SQL
    assert migrate.CHECKSUM_TABLE_SQL == goldgate_migrations.CHECKSUM_TABLE_SQL


@pytest.mark.parametrize(("first", "then"), [("service", "goldgate"), ("goldgate", "service")])
def test_a_database_one_runner_migrated_is_trusted_by_the_other_and_an_edit_refused_by_both(
        tmp_path: Path, first: str, then: str) -> None:
    migrations = write(tmp_path / "m", "0001_notes.sql", "CREATE TABLE notes (body TEXT);\n")
    write(migrations, "0002_tags.sql", "-- tags\nCREATE TABLE tags (x); CREATE INDEX t ON tags (x);\n")
    db, reference = tmp_path / "db.sqlite", tmp_path / "reference.sqlite"
    assert RUNNERS[first](db, migrations) == ["0001_notes.sql", "0002_tags.sql"]
    assert RUNNERS[then](reference, migrations) == ["0001_notes.sql", "0002_tags.sql"]
    record = "SELECT name, sha256, d1_migrations_id FROM goldgate_migration_checksums ORDER BY name"
    assert rows(db, record) == rows(reference, record)   # the same rows, whichever runner wrote them
    declared = [(m.name, m.sha256) for m in goldgate_migrations.discover(migrations)]
    assert [r[:2] for r in rows(db, record)] == declared

    assert RUNNERS[then](db, migrations) == []   # nothing re-applied, nothing refused
    write(migrations, "0001_notes.sql", "CREATE TABLE notes (body TEXT, author TEXT);\n")
    write(migrations, "0003_more.sql", "CREATE TABLE more (x);\n")
    said = refusals(db, migrations)
    assert all(EDITED in message and "add a new migration file" in message for message in said.values()), said
    assert rows(db, "SELECT name FROM d1_migrations ORDER BY id") == [("0001_notes.sql",), ("0002_tags.sql",)]


def test_a_migration_applied_without_a_record_is_recorded_as_it_reads_and_guarded_from_then_on(
        tmp_path: Path) -> None:
    # As wrangler applies it, or this runner did before it kept the record: a d1_migrations row, no sha256.
    migrations = write(tmp_path / "m", "0001_notes.sql", "CREATE TABLE notes (body TEXT);\n")
    db = tmp_path / "db.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute(migrate.TRACKING_TABLE_SQL)
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO d1_migrations (name) VALUES ('0001_notes.sql')")
    conn.close()
    assert by_service(db, migrations) == []
    write(migrations, "0001_notes.sql", "CREATE TABLE notes (body TEXT, author TEXT);\n")
    assert all(EDITED in message for message in refusals(db, migrations).values())


def test_a_migration_undone_by_hand_runs_again_with_its_new_text(tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", "0001_notes.sql", "CREATE TABLE notes (body TEXT);\n")
    db = tmp_path / "db.sqlite"
    by_service(db, migrations)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE notes")
        conn.execute("DELETE FROM d1_migrations")
    conn.close()
    write(migrations, "0001_notes.sql", "CREATE TABLE notes (body TEXT, author TEXT);\n")
    assert by_service(db, migrations) == ["0001_notes.sql"]   # the record of its old text does not block it
    assert by_goldgate(db, migrations) == []


def test_a_migration_that_fails_leaves_neither_its_row_nor_its_record(tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", "0001_notes.sql", "CREATE TABLE notes (x);\nINSERT INTO x VALUES (1);")
    db = tmp_path / "db.sqlite"
    with pytest.raises(migrate.MigrationError, match="^migration 0001_notes.sql failed: no such table: x$"):
        by_service(db, migrations)
    assert rows(db, "SELECT name FROM d1_migrations") == []
    assert rows(db, "SELECT name FROM goldgate_migration_checksums") == []
    assert rows(db, "SELECT name FROM sqlite_master WHERE name = 'notes'") == []


def test_a_database_locked_by_another_writer_is_named_not_a_traceback(tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", "0001_notes.sql", "CREATE TABLE notes (body TEXT);\n")
    db = tmp_path / "db.sqlite"
    by_service(db, migrations)
    write(migrations, "0002_more.sql", "CREATE TABLE more (x);\n")
    writer = sqlite3.connect(db, isolation_level=None)
    conn = sqlite3.connect(db, isolation_level=None, timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")
        # Before: the ROLLBACK of the transaction BEGIN never opened raised "no transaction is active".
        with pytest.raises(migrate.MigrationError, match="^migration 0002_more.sql failed: database is lock"):
            migrate.apply_sqlite(conn, migrations)
    finally:
        conn.close()
        writer.close()


def test_a_migration_cut_off_mid_statement_is_named_and_leaves_the_database_writable(tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", "0001_notes.sql", "CREATE TABLE notes (x);\nCREATE TABLE y (\n")
    db = tmp_path / "db.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        with pytest.raises(migrate.MigrationError, match="^0001_notes.sql: migration ends with an"):
            migrate.apply_sqlite(conn, migrations)
        # Before: the refusal came inside the migration's transaction, which kept the write lock.
        other = sqlite3.connect(db, isolation_level=None, timeout=0)
        try:
            other.execute("CREATE TABLE unrelated (x)")
        finally:
            other.close()
    finally:
        conn.close()
