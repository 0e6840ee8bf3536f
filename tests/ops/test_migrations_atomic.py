"""`goldgate up` migrates the stack's SQLite with goldgate.migrations.apply_sqlite, each migration in its own
transaction. Python's sqlite3 opens no transaction before DDL: a migration of two `ALTER TABLE ... ADD COLUMN`
(0005) that failed at its second left the first column behind, unrecorded, and every later `goldgate up` failed
on `duplicate column name` until someone edited the database by hand."""

from __future__ import annotations

import sqlite3

import pytest

from goldgate.migrations import MigrationError, apply_sqlite


def _columns(db) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [row[1] for row in conn.execute("PRAGMA table_info(jobs)")]
    finally:
        conn.close()


def test_a_migration_that_fails_at_its_second_alter_leaves_nothing_and_applies_once_fixed(tmp_path):
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_init.sql").write_text("CREATE TABLE jobs (id TEXT PRIMARY KEY);\n")
    second = migrations / "0002_job_run_policy.sql"
    # The second statement fails (as a full disk or an I/O error would fail it): here it names no table.
    second.write_text("ALTER TABLE jobs ADD COLUMN policy_ttl_ms INTEGER;\n"
                      "ALTER TABLE no_such_table ADD COLUMN run_timeout_ms INTEGER;\n")
    db = tmp_path / "db.sqlite"
    with pytest.raises(MigrationError, match="0002_job_run_policy.sql"):
        apply_sqlite(db, migrations)
    assert _columns(db) == ["id"]  # all or nothing

    second.write_text("ALTER TABLE jobs ADD COLUMN policy_ttl_ms INTEGER;\n"
                      "ALTER TABLE jobs ADD COLUMN run_timeout_ms INTEGER;\n")
    assert apply_sqlite(db, migrations) == ["0002_job_run_policy.sql"]
    assert _columns(db) == ["id", "policy_ttl_ms", "run_timeout_ms"]
