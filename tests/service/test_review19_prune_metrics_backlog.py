"""The API Worker's Cron Trigger over a year of metrics rows turned due at once (retention turned on late):
each run's statement budget gets through 5,000 metrics rows a statement, and a run cut part-way leaves the
rest to the next, which deletes exactly what `goldgate prune` deletes."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from test_service_cloudflare_entry import Ctx
from test_service_scheduled_retention import (
    CRON,
    DAY,
    NOW,
    _controller,
    _lines,
    _state,
    _what_goldgate_prune_leaves,
    _worker,
    entry,  # noqa: F401  (the fixture)
)

from service.jobs import iso_ms

OLD, RECENT = 12_000, 300  # metrics rows 400 days old (due at 365) and 10 days old (kept)


def _metrics_backlog(conn: sqlite3.Connection) -> None:
    """Metrics rows whose jobs were pruned long ago, over four image tags with spread timings (as the covering
    indexes see them), a few seconds apart, then recent ones interleaved in every index."""
    def rows(count: int, days: int, prefix: str) -> list[tuple[Any, ...]]:
        base = NOW - days * DAY
        return [(f"{prefix}-{n:05d}", "completed" if n % 9 else "failed", (n * 37) % 5000, (n * 101) % 30000,
                 9000 + (n * 37) % 5000 + (n * 101) % 30000, f"repo/worker@sha256:{n % 4:064x}",
                 iso_ms(base + n * 3)) for n in range(count)]

    conn.execute("BEGIN")
    conn.executemany("INSERT INTO job_metrics (job_id, stack, status, runpod_queue_duration_ms, "
                     "runpod_run_duration_ms, e2e_ms, worker_image_tag, created_at, images) "
                     "VALUES (?, 'staging', ?, ?, ?, ?, ?, ?, 1)",
                     rows(OLD, 400, "old") + rows(RECENT, 10, "recent"))
    conn.execute("COMMIT")


def test_one_scheduled_run_of_a_few_statements_deletes_a_backlog_of_12000_metrics_rows(
        entry, tmp_path, capsys, log_lines, monkeypatch):  # noqa: F811
    # The idempotency keys' statement, then three of metrics: 15,000 rows' worth (3,000 at 1,000 a statement).
    monkeypatch.setattr(entry, "RETENTION_STATEMENTS", 4)
    worker, env = _worker(entry, tmp_path, RETENTION_KEEP_DAYS="30", RETENTION_METRICS_KEEP_DAYS="365")
    _metrics_backlog(env.DB.conn)

    asyncio.run(worker.scheduled(_controller(), env, Ctx()))

    [line] = _lines(capsys, log_lines)
    assert line["status"] == "partial"  # the old jobs wait for the next run
    assert line["data"]["deleted"]["job_metrics"] == OLD + 1  # the backlog and old-completed (400 days)
    left = _state(env.DB.conn)["job_metrics"]
    assert not any(job_id.startswith("old-0") for job_id in left) and "old-completed" not in left
    assert {f"recent-{n:05d}" for n in range(RECENT)} | {"old-failed", "old-but-finished-late"} <= left


@pytest.mark.parametrize("budget", [2, 3])
def test_scheduled_runs_cut_inside_the_metrics_backlog_carry_on_and_end_as_goldgate_prune_does(
        entry, tmp_path, capsys, log_lines, monkeypatch, budget):  # noqa: F811
    worker, env = _worker(entry, tmp_path, RETENTION_KEEP_DAYS="30", RETENTION_METRICS_KEEP_DAYS="365")
    _metrics_backlog(env.DB.conn)
    expected = _what_goldgate_prune_leaves(env, tmp_path, 30, 365)

    # Runs cut after the keys' statement and one or two of metrics, then a run with the real budget.
    real_budget = entry.RETENTION_STATEMENTS
    monkeypatch.setattr(entry, "RETENTION_STATEMENTS", budget)
    for _ in range(3):
        asyncio.run(worker.scheduled(_controller(), env, Ctx()))
    monkeypatch.setattr(entry, "RETENTION_STATEMENTS", real_budget)
    asyncio.run(worker.scheduled(_controller(), env, Ctx()))
    runs = _lines(capsys, log_lines)

    assert [line["status"] for line in runs] == ["partial"] * 3 + ["complete"]
    assert 0 < runs[0]["data"]["deleted"]["job_metrics"] < OLD
    assert _state(env.DB.conn) == expected
    assert {f"recent-{n:05d}" for n in range(RECENT)} <= expected["job_metrics"]
    assert not any(job_id.startswith("old-0") for job_id in expected["job_metrics"])
    # Each row counted once, in the run that deleted it, however the runs were cut.
    assert sum(line["data"]["deleted"]["job_metrics"] for line in runs) == OLD + 1
    assert runs[-1]["data"]["remaining"]["job_metrics"] == len(expected["job_metrics"])
    assert all(line["data"]["cron"] == CRON for line in runs)
