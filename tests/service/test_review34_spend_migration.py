"""Migration 0009 (daily_spend) over a database an older goldgate filled: each day's row is the spend and count of the
jobs that ended that day, a job's day its finished_at (a job `goldgate prune` deleted keeps only its metrics row,
and counts on the day it was created). Every runner: `goldgate up`'s, D1's over REST, the local service's."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest
from test_review15_upgrade_migrations import MIGRATIONS, RUNNERS, _load

from goldgate.ops.metrics_report import report_from_sqlite


def _expected(conn: sqlite3.Connection) -> dict[str, tuple[float, int]]:
    days: dict[str, list[float]] = defaultdict(list)
    for finished, created, usd in conn.execute(
            "SELECT j.finished_at, m.created_at, m.cost_estimate_usd FROM job_metrics m "
            "LEFT JOIN jobs j ON j.id = m.job_id"):
        days[(finished or created)[:10]].append(usd or 0.0)
    return {day: (pytest.approx(sum(costs)), len(costs)) for day, costs in days.items()}


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_migration_backfills_each_day_from_the_metrics_rows(tmp_path: Path, runner: str) -> None:
    old = _load("staging_db_9d985f1.sql", tmp_path / "old.sqlite")
    assert "daily_spend" not in {r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    ids = [r[0] for r in old.execute("SELECT job_id FROM job_metrics ORDER BY job_id")]
    assert len(ids) >= 3
    # one job ended after midnight, one was pruned (its metrics row kept) and had been created two days later
    old.execute("UPDATE jobs SET finished_at = '2026-12-01T00:00:01.000Z' WHERE id = ?", (ids[0],))
    old.execute("DELETE FROM webhook_deliveries WHERE job_id = ?", (ids[1],))
    old.execute("DELETE FROM jobs WHERE id = ?", (ids[1],))
    old.execute("UPDATE job_metrics SET created_at = '2026-12-02T10:00:00.000Z' WHERE job_id = ?", (ids[1],))
    expected = _expected(old)
    assert len(expected) == 3

    assert "0009_daily_spend.sql" in RUNNERS[runner](old, MIGRATIONS)
    got = {day: (usd, jobs) for day, usd, jobs in old.execute("SELECT day, usd, jobs FROM daily_spend")}
    assert got == expected
    assert sum(jobs for _, jobs in got.values()) == len(ids)
    assert RUNNERS[runner](old, MIGRATIONS) == []  # applied once


def test_the_metrics_report_of_an_unmigrated_database_says_todays_spend_is_unknown(tmp_path: Path) -> None:
    _load("staging_db_9d985f1.sql", tmp_path / "old.sqlite").close()
    report = report_from_sqlite(tmp_path / "old.sqlite", "staging")
    assert report["daily_spend"] is None
