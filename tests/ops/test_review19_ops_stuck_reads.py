"""`goldgate stuck` reads the unfinished jobs, not the table: a cron runs it every few minutes, and on D1 each row
read is billed. Its list walked the created_at index and read every older job's row to find the few unfinished
ones: the whole table when none is stuck. The work is counted in SQLite VM instructions (not time): fewer than
one per job in the table."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from ops_fixtures import build_stack_db

from goldgate import spec as specs
from goldgate.ops import fingerprint, stuck
from service.jobs import iso_ms

JOBS = 20_000
STAGING = specs.load_local("staging")


def _stack_db(tmp_path: Path, stuck_ages_s: tuple[float, ...]) -> Path:
    """JOBS finished jobs, then one in progress per age."""
    db = build_stack_db(tmp_path / "db.sqlite", jobs=JOBS, start="2026-01-01T00:00:00Z")
    now = time.time()
    with sqlite3.connect(db) as conn:
        for n, age in enumerate(stuck_ages_s):
            created = now - age
            conn.execute("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                         "created_at, created_at_ms, updated_at, policy_ttl_ms, run_timeout_ms) VALUES (?, 'staging', "
                         "'w', 'w@1', '{}', 't', 'in_progress', ?, ?, ?, 3600000, 10000)",
                         (f"{n:032x}", iso_ms(created), int(created * 1000), iso_ms(created)))
    conn.close()
    return db


def _counting(monkeypatch: Any) -> list[int]:
    steps = [0]
    real = fingerprint.connect_read_only

    def connect(path: Path, **kwargs: Any) -> sqlite3.Connection:
        conn = real(path, **kwargs)

        def tick() -> int:
            steps[0] += 1
            return 0

        conn.set_progress_handler(tick, 1)
        return conn

    monkeypatch.setattr(fingerprint, "connect_read_only", connect)  # stuck opens through it
    return steps


def test_none_stuck_reads_no_finished_job(tmp_path, monkeypatch):
    db = _stack_db(tmp_path, (60.0,))  # one job, a minute old: younger than the window
    steps = _counting(monkeypatch)
    report = stuck.list_local(STAGING, db, 10)
    assert (report.stuck, report.younger) == (0, 1)
    assert steps[0] < JOBS, steps[0]


def test_the_stuck_are_listed_oldest_first_reading_no_finished_job(tmp_path, monkeypatch):
    db = _stack_db(tmp_path, (3 * 3600.0, 5 * 3600.0, 4 * 3600.0, 60.0))
    steps = _counting(monkeypatch)
    report = stuck.list_local(STAGING, db, 10, limit=2)
    assert [job.id for job in report.jobs] == [f"{1:032x}", f"{2:032x}"]
    assert (report.stuck, report.more, report.younger) == (3, 1, 1)
    assert steps[0] < JOBS, steps[0]
