"""A migration named as `wrangler d1 migrations create` names it is one goldgate's runners take.

wrangler writes `NNNN_<message>.sql`, the message's spaces as `_` and its case and hyphens kept
(`wrangler d1 migrations create goldgate "Add cancel-reason"` writes 0009_Add_cancel-reason.sql), and applies any
`*.sql`. goldgate's runners took only lowercase words: a team that created a migration with wrangler could not
migrate with goldgate, and once wrangler had applied it, renaming the file left a database that records a migration
the checkout lacks, refused too. tests/pyodide/test_review30_wr_wrangler_migrations.py runs the real wrangler.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from goldgate import migrations as gm
from service import migrate as sm
from service.sqltext import split_sql

WRANGLER_NAME = "0002_Add_cancel-reason.v2.sql"


def _migrations(tmp_path: Path, second: str) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_init.sql").write_text("CREATE TABLE jobs (id TEXT PRIMARY KEY);\n")
    (directory / second).write_text("-- Migration number: 0002 \t 2026-12-01T21:15:47.543Z\n"
                                    "ALTER TABLE jobs ADD COLUMN cancel_reason TEXT;\n")
    return directory


def _d1_query(conn: sqlite3.Connection):
    """D1's REST /query as the cloud runner calls it: a batch of statements in one transaction, the last one's rows."""
    def execute(sql: str, params: list) -> list[dict]:
        assert not params
        rows: list[dict] = []
        with conn:
            conn.execute("BEGIN")
            for statement in split_sql(sql + "\n;"):  # the last statement may come without its ";"
                cur = conn.execute(statement)
                columns = [c[0] for c in cur.description or ()]
                rows = [dict(zip(columns, row, strict=True)) for row in cur]
        return rows

    return execute


def _columns(conn: sqlite3.Connection) -> list[str]:
    return [r[1] for r in conn.execute("PRAGMA table_info(jobs)")]


@pytest.mark.parametrize("runner", ["goldgate", "service", "d1_rest"])
def test_every_runner_applies_and_records_a_migration_wrangler_named(tmp_path, runner) -> None:
    directory = _migrations(tmp_path, WRANGLER_NAME)
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    apply = {"goldgate": lambda: gm.apply_sqlite(conn, directory),
             "service": lambda: sm.apply_sqlite(conn, directory),
             "d1_rest": lambda: gm.apply_with(_d1_query(conn), directory)}[runner]
    assert apply() == ["0001_init.sql", WRANGLER_NAME]
    assert _columns(conn) == ["id", "cancel_reason"]
    assert conn.execute("SELECT name FROM d1_migrations ORDER BY id").fetchall() == [("0001_init.sql",),
                                                                                      (WRANGLER_NAME,)]
    assert conn.execute("SELECT name FROM goldgate_migration_checksums ORDER BY name").fetchall() == [
        ("0001_init.sql",), (WRANGLER_NAME,)]
    assert apply() == []


@pytest.mark.parametrize("runner", ["goldgate", "service"])
def test_a_migration_wrangler_created_and_applied_is_taken_as_applied(tmp_path, runner) -> None:
    directory = _migrations(tmp_path, WRANGLER_NAME)
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    gm.apply_sqlite(conn, directory)
    # What `wrangler d1 migrations apply` does with it: the file's SQL and its row, no sha256 of goldgate's.
    conn.execute("DELETE FROM goldgate_migration_checksums")
    conn.execute("DELETE FROM d1_migrations WHERE name = ?", (WRANGLER_NAME,))
    conn.execute("ALTER TABLE jobs DROP COLUMN cancel_reason")
    conn.executescript((directory / WRANGLER_NAME).read_text()
                       + f"INSERT INTO d1_migrations (name) values ('{WRANGLER_NAME}');")
    apply = gm.apply_sqlite if runner == "goldgate" else sm.apply_sqlite
    assert apply(conn, directory) == []
    assert _columns(conn) == ["id", "cancel_reason"]
    recorded = dict(conn.execute("SELECT name, sha256 FROM goldgate_migration_checksums").fetchall())
    assert recorded[WRANGLER_NAME] == gm.sha256((directory / WRANGLER_NAME).read_text())


@pytest.mark.parametrize("name", ["0002_don't.sql", "0002_add (v2).sql", "0002_a;b.sql"])
def test_a_name_no_sql_literal_holds_as_it_is_is_refused_with_the_way_out_before_anything_runs(tmp_path,
                                                                                                name) -> None:
    directory = _migrations(tmp_path, name)
    db = tmp_path / "db.sqlite"
    with pytest.raises(gm.MigrationError) as goldgate_err:
        gm.apply_sqlite(db, directory)
    with pytest.raises(sm.MigrationError) as service_err:
        sm.apply_sqlite(sqlite3.connect(tmp_path / "other.sqlite", isolation_level=None), directory)
    for err in (goldgate_err, service_err):
        message = str(err.value)
        assert name in message and "'-'" in message and "UPDATE d1_migrations SET name" in message
    # goldgate's runner discovers the files before it writes anything
    assert not sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE name = 'jobs'").fetchall()
