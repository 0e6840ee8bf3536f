"""Migration 0010 (jobs.client) over a database an older goldgate filled, by every runner (`goldgate up`'s, D1's over
REST, the local service's): each job it held is the API token's (client NULL), its other columns as they were, and a
client's job written after it records its client."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_review15_upgrade_migrations import MIGRATIONS, RUNNERS, _load

from service import jobs


def _jobs(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT id, status, trace_id, created_at_ms FROM jobs ORDER BY id").fetchall()


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_migration_leaves_every_older_job_the_api_tokens_and_takes_a_clients(tmp_path: Path, runner: str) -> None:
    old = _load("staging_db_9d985f1.sql", tmp_path / "old.sqlite")
    before = _jobs(old)
    assert before and "client" not in {r[1] for r in old.execute("PRAGMA table_info(jobs)")}

    assert "0010_job_client.sql" in RUNNERS[runner](old, MIGRATIONS)
    assert _jobs(old) == before
    assert {r[0] for r in old.execute("SELECT DISTINCT client FROM jobs")} == {None}
    assert {r[0] for r in old.execute("SELECT DISTINCT typeof(client) FROM jobs")} == {"null"}

    job = jobs.NewJob(id="f" * 32, stack="staging", workflow_id="sdxl-txt2img", workflow_version="v", inputs={},
                      trace_id="0" * 32, created_at_s=1_800_000_000.0, worker_image_tag=None, client="alice")
    statement = jobs.insert_statement(job)
    old.execute(statement.sql, statement.params)
    row = old.execute("SELECT * FROM jobs WHERE id = ?", (job.id,)).fetchone()
    names = [d[0] for d in old.execute("SELECT * FROM jobs LIMIT 0").description]
    assert jobs.status_view(dict(zip(names, row, strict=True)))["client"] == "alice"
    assert RUNNERS[runner](old, MIGRATIONS) == []  # applied once
