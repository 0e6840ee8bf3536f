"""`goldgate prune` from a machine whose clock is wrong: the cutoff comes from the database's clock, the one the jobs'
times were written by, so a job whose results R2 still serves keeps its row. Here the wrong clock is Python's
(`time.time` shifted); on the local target SQLite's clock is the machine's too, so what this proves in production is
the D1 case: the cutoff is asked of the database, not computed from the prune's process."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta

from goldgate import spec as specs
from goldgate.ops import retention

PROD = specs.load_local("prod")  # result_ttl_days: 30
DAY_S = 86_400


def _count(db, sql: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_a_clock_two_months_ahead_does_not_prune_jobs_that_finished_this_week(tmp_path, stack_db, monkeypatch):
    three_days_ago = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    db = stack_db(tmp_path / "db.sqlite", jobs=500, stack="prod", start=three_days_ago)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 60 * DAY_S)  # the runner's clock, 60 days ahead
    report = retention.prune_local(PROD, db, keep_days=30)
    monkeypatch.undo()
    # Their images are in R2 for 27 more days: the old cutoff (the runner's clock minus 30 days) deleted every row.
    assert report.deleted["jobs"] == 0 and report.deleted["webhook_deliveries"] == 0
    assert _count(db, "SELECT COUNT(*) FROM jobs") == 500
    assert report.jobs_before < datetime.now(UTC).isoformat()
