"""A state home an older goldgate left: its stacks' databases predate migrations this checkout has.

A stack's host applies the migrations when it starts, so an older host still running (or a database
nobody started since) keeps the older schema until a host of this goldgate starts on it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from goldgate.errors import StateError
from goldgate.migrations import MIGRATIONS_DIR, apply_sqlite
from goldgate.ops.backup import take_backup
from goldgate.ops.dr import restore_into_stack

ADDED = "0002_idempotency_keys.sql"


def _as_before(db: Path) -> None:
    """The database as the goldgate before migration 0002 left it."""
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE idempotency_keys")
        conn.execute("DELETE FROM d1_migrations WHERE name = ?", (ADDED,))
    conn.close()


def _applied(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM d1_migrations")}
    finally:
        conn.close()


def test_up_on_a_stack_an_older_host_still_serves_says_to_restart_it_and_the_restart_migrates(own_platform) -> None:
    own_platform.up("staging")
    db = own_platform.db_path("staging")
    _as_before(db)
    with pytest.raises(StateError) as refused:
        own_platform.up("staging")
    said = str(refused.value)
    assert f"migrations not applied: {ADDED}" in said and "\n" not in said
    assert "`goldgate down staging && goldgate up staging`" in said
    assert ADDED not in _applied(db)  # nothing migrated under the running host
    own_platform.down("staging")
    own_platform.up("staging")
    assert ADDED in _applied(db)
    own_platform.up("staging")  # a migrated stack is simply up


def test_a_backup_taken_before_a_migration_restores_and_the_next_up_applies_it(own_platform, tmp_path) -> None:
    before = tmp_path / "migrations-0001"
    before.mkdir()
    (before / "0001_init.sql").write_text((MIGRATIONS_DIR / "0001_init.sql").read_text())
    old = tmp_path / "old.sqlite"
    apply_sqlite(old, before)
    with sqlite3.connect(old) as conn:
        conn.execute("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                     "created_at, created_at_ms, updated_at) VALUES ('job-from-before', 'staging', 'sdxl-txt2img', "
                     "'sdxl-txt2img@1.0.0', '{}', 't', 'completed', '2026-11-01T00:00:00.000Z', 0, "
                     "'2026-11-01T00:00:00.000Z')")
    conn.close()
    backup, _ = take_backup(old, tmp_path / "backups", "staging")
    restore_into_stack(backup, own_platform.db_path("staging"), "staging")
    own_platform.up("staging")
    db = own_platform.db_path("staging")
    assert ADDED in _applied(db)
    conn = sqlite3.connect(db)
    try:
        assert [row[0] for row in conn.execute("SELECT id FROM jobs")] == ["job-from-before"]
    finally:
        conn.close()
