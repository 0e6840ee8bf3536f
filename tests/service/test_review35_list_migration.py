"""Migration 0012 (GET /api/jobs' indexes) over a database an older goldgate filled, at 0010 (named clients) and at
0011 (clients' spend), by every runner (`goldgate up`'s, D1's over REST, the local service's): each job stays as it
was, the listing's pages read the new indexes, and a second run applies nothing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from test_review15_upgrade_migrations import MIGRATIONS, RUNNERS, _load

from service.joblist import INDEXES, Listing, page_statement


def _upto(tmp_path: Path, last: str) -> Path:
    """The migrations an older goldgate shipped: 0001 to `last`."""
    directory = tmp_path / f"migrations_{last}"
    directory.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.name[:4] <= last:
            shutil.copy(path, directory / path.name)
    return directory


def _jobs(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM jobs ORDER BY id").fetchall()


@pytest.mark.parametrize("at", ["0010", "0011"])
@pytest.mark.parametrize("runner", RUNNERS)
def test_the_migration_applies_over_a_database_at_0010_or_0011_and_the_listing_reads_its_indexes(
        tmp_path: Path, runner: str, at: str) -> None:
    old = _load("staging_db_9d985f1.sql", tmp_path / "old.sqlite")
    RUNNERS[runner](old, _upto(tmp_path, at))
    ids = [r[0] for r in old.execute("SELECT id FROM jobs ORDER BY created_at, id")]
    assert len(ids) >= 4
    old.execute("UPDATE jobs SET client = 'alice' WHERE id IN (?, ?)", (ids[0], ids[1]))
    before = _jobs(old)
    assert not {"jobs_client_created", "jobs_created_id"} & {r[0] for r in old.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index'")}

    applied = RUNNERS[runner](old, MIGRATIONS)
    assert applied[-1] == "0012_job_list_indexes.sql" and (at == "0010") == ("0011_client_daily_spend.sql" in applied)
    assert _jobs(old) == before
    for client in (None, "alice"):
        sql, params = page_statement(Listing(client, None, None, 50))
        plan = " ".join(r[3] for r in old.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert f"USING INDEX {INDEXES[client is not None]}" in plan and "TEMP B-TREE" not in plan, plan
        listed = [r[0] for r in old.execute(sql, params)]
        assert listed == [i for i in reversed(ids) if client is None or i in ids[:2]]
    assert RUNNERS[runner](old, MIGRATIONS) == []  # applied once
