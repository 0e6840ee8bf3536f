"""Migration 0011 (client_daily_spend) over a database a goldgate with named clients (0010) filled, by every runner
(`goldgate up`'s, D1's over REST, the local service's): each client's row of a day is the spend and count of its jobs
that ended that day (a job's day its finished_at); the API token's jobs, and a job `goldgate prune` deleted (no row
left names its client), have none. The metrics report of a database without it says the clients' spend is unknown."""

from __future__ import annotations

import shutil
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest
from test_review15_upgrade_migrations import MIGRATIONS, RUNNERS, _load

from goldgate.ops.metrics_report import client_spend_text, report_from_sqlite


def _before_0011(tmp_path: Path) -> Path:
    """The migrations a goldgate with named clients and no client limit shipped (0001 to 0010)."""
    directory = tmp_path / "migrations_0010"
    directory.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.name < "0011":
            shutil.copy(path, directory / path.name)
    return directory


def _expected(conn: sqlite3.Connection) -> dict[tuple[str, str], tuple[float, int]]:
    days: dict[tuple[str, str], list[float]] = defaultdict(list)
    for finished, created, client, usd in conn.execute(
            "SELECT j.finished_at, m.created_at, j.client, m.cost_estimate_usd FROM job_metrics m "
            "JOIN jobs j ON j.id = m.job_id WHERE j.client IS NOT NULL"):
        days[((finished or created)[:10], client)].append(usd or 0.0)
    return {key: (pytest.approx(sum(costs)), len(costs)) for key, costs in days.items()}


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_migration_backfills_each_clients_days_from_its_jobs_metrics(tmp_path: Path, runner: str) -> None:
    old = _load("staging_db_9d985f1.sql", tmp_path / "old.sqlite")
    assert "0010_job_client.sql" in RUNNERS[runner](old, _before_0011(tmp_path))
    ids = [r[0] for r in old.execute("SELECT job_id FROM job_metrics ORDER BY job_id")]
    assert len(ids) >= 4
    # alice's first job ended after midnight; bob's job was pruned (its metrics row kept); the last is the API token's
    old.execute("UPDATE jobs SET client = 'alice' WHERE id IN (?, ?)", (ids[0], ids[1]))
    old.execute("UPDATE jobs SET finished_at = '2026-12-01T00:00:01.000Z' WHERE id = ?", (ids[0],))
    old.execute("UPDATE jobs SET client = 'bob' WHERE id = ?", (ids[2],))
    old.execute("UPDATE jobs SET client = 'bob', finished_at = '2026-12-03T09:00:00.000Z' WHERE id = ?", (ids[3],))
    old.execute("DELETE FROM webhook_deliveries WHERE job_id = ?", (ids[2],))
    old.execute("DELETE FROM jobs WHERE id = ?", (ids[2],))
    expected = _expected(old)
    assert {client for _, client in expected} == {"alice", "bob"} and len(expected) >= 3

    assert "0011_client_daily_spend.sql" in RUNNERS[runner](old, MIGRATIONS)
    got = {(day, client): (usd, jobs) for day, client, usd, jobs in old.execute(
        "SELECT day, client, usd, jobs FROM client_daily_spend")}
    assert got == expected
    assert sum(jobs for _, jobs in got.values()) == 3  # alice's two, bob's one not pruned
    assert RUNNERS[runner](old, MIGRATIONS) == []  # applied once


def test_the_metrics_report_of_a_database_before_0011_says_the_clients_spend_is_unknown(tmp_path: Path) -> None:
    old = _load("staging_db_9d985f1.sql", tmp_path / "old.sqlite")
    RUNNERS["goldgate.apply_sqlite"](old, _before_0011(tmp_path))
    old.close()
    report = report_from_sqlite(tmp_path / "old.sqlite", "staging")
    assert report["daily_spend"] is not None and report["daily_spend"]["clients"] is None
    assert "migration 0011 not applied yet" in client_spend_text(report["daily_spend"])
