"""Rows of the job_metrics table for the metrics report's tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from goldgate.migrations import apply_sqlite

Job = tuple[str, str, int, int, float, int, str]   # (version, status, run_ms, e2e_ms, cost, images, created_at)


def fill_job_metrics(db: Path, jobs: Iterable[Job], tag: str) -> None:
    """`jobs` as STAGING's job_metrics rows (ids j0, j1, ..., each of the release `tag`) in a migrated SQLite database
    at `db`, its folder made if need be."""
    db.parent.mkdir(parents=True, exist_ok=True)
    apply_sqlite(db)
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany("INSERT INTO job_metrics (job_id, stack, workflow_version, status, runpod_run_duration_ms, "
                         "e2e_ms, cost_estimate_usd, images, worker_image_tag, created_at) "
                         "VALUES (?, 'staging', ?, ?, ?, ?, ?, ?, ?, ?)",
                         [(f"j{i}", *job[:6], tag, job[6]) for i, job in enumerate(jobs)])
    conn.close()
