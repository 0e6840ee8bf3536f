"""`goldgate prune --metrics-keep-days M` weighs a stretch with no job created against M + 366 days, not against
--keep-days + 366: a stack whose jobs were pruned on time, idle longer than --keep-days + 366 days but not M + 366,
has its year-old metrics pruned as asked, not refused as if its clock had stepped ahead."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from ops_fixtures import build_stack_db

from goldgate import spec as specs
from goldgate.ops import retention

STAGING = specs.load_local("staging")  # result_ttl_days: 7
DAY_S = 86_400
NEWEST_S = datetime(2026, 11, 1, tzinfo=UTC).timestamp() + 20  # build_stack_db: job i created at START + i s
JOBS = 20
KEEP, METRICS_KEEP = 30, 365


def _metrics_only(tmp_path):
    """The jobs pruned on time, their metrics kept (as `--keep-days 30 --metrics-keep-days 365` leaves them)."""
    db = build_stack_db(tmp_path / "db.sqlite", jobs=JOBS, start="2026-11-01T00:00:00Z")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM webhook_deliveries")
        conn.execute("DELETE FROM jobs")
    conn.close()
    return db


def test_metrics_older_than_their_keep_days_after_a_quiet_shorter_than_it_and_a_year_go(tmp_path):
    db = _metrics_only(tmp_path)
    idle = KEEP + retention.MAX_QUIET_DAYS + 100  # past --keep-days + 366, within --metrics-keep-days + 366
    report = retention.prune_local(STAGING, db, KEEP, METRICS_KEEP, now_s=NEWEST_S + idle * DAY_S)
    assert report.deleted["job_metrics"] == JOBS


def test_a_quiet_past_the_metrics_keep_days_and_a_year_is_refused(tmp_path):
    db = _metrics_only(tmp_path)
    idle = METRICS_KEEP + retention.MAX_QUIET_DAYS + 1
    with pytest.raises(retention.PruneRefused, match=f"--metrics-keep-days {METRICS_KEEP} \\+ 366"):
        retention.prune_local(STAGING, db, KEEP, METRICS_KEEP, now_s=NEWEST_S + idle * DAY_S)
