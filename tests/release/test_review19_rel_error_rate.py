"""Review 19 (rel): STAGING's error rate counts a failed job whose created_at has an offset that puts its date on the
day before the deploy (a row the service did not write, kept in its own form): the gate must not open on a window
that lost a failure."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from goldgate.migrations import apply_sqlite
from goldgate.release.error_rate import from_sqlite

SINCE = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_a_failure_whose_offset_dates_it_the_day_before_the_deploy_is_counted(tmp_path: Path) -> None:
    db = tmp_path / "staging.sqlite"
    apply_sqlite(db)
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO job_metrics (job_id, stack, status, created_at) VALUES (?, ?, ?, ?)", [
        ("ok-1", "staging", "completed", "2026-11-28T12:10:00.000Z"),
        ("failed-1", "staging", "failed", "2026-11-27T23:30:00-13:00"),   # 2026-11-28T12:30Z: after the deploy
        ("before-1", "staging", "failed", "2026-11-27T22:59:00-13:00"),   # 2026-11-28T11:59Z: before it
    ])
    conn.commit()
    conn.close()

    rate = from_sqlite(db, "staging", SINCE)

    assert (rate.jobs, rate.failed) == (2, 1)
