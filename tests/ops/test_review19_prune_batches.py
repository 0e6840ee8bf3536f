"""`goldgate prune --metrics-keep-days` over a backlog of metrics larger than a statement's batch (retention
turned on after a year): exactly the rows before the cutoff go, a dry run counts them, and a prune cut
part-way through the batches is finished by the next one."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_retention import _CutOff  # a connection that drops after so many statements

from goldgate import spec as specs
from goldgate.migrations import apply_sqlite
from goldgate.ops import retention
from service import retention as service_retention
from service.jobs import iso_ms

DAY = 86_400
NOW = 1_795_000_000.0  # 2026-11-18
STAGING = specs.load_local("staging")  # result_ttl_days: 7
OLD, RECENT = 11_500, 400
METRICS_CUTOFF = iso_ms(NOW - 365 * DAY)

_JOB = ("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
        "created_at, created_at_ms, updated_at, finished_at) "
        "VALUES (?, 'staging', 'w', 'w@1', '{}', 't', 'completed', ?, 0, ?, ?)")


def _backlog(path: Path) -> Path:
    """Metrics of jobs pruned long ago (400 days old), over four image tags with spread timings, then recent
    ones (interleaved with them in every covering index), one row each side of the 365-day cutoff, and two
    recent jobs."""
    apply_sqlite(path)

    def rows(count: int, base_s: float, prefix: str) -> list[tuple[Any, ...]]:
        return [(f"{prefix}-{n:05d}", "completed" if n % 9 else "failed", (n * 37) % 5000, (n * 101) % 30000,
                 9000 + (n * 37) % 5000 + (n * 101) % 30000, f"repo/worker@sha256:{n % 4:064x}",
                 iso_ms(base_s + n * 2)) for n in range(count)]

    edge = [("edge-before", "completed", 1, 1, 1, None, iso_ms(NOW - 365 * DAY - 0.001)),
            ("edge-at", "completed", 1, 1, 1, None, METRICS_CUTOFF)]
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO job_metrics (job_id, stack, status, runpod_queue_duration_ms, "
                         "runpod_run_duration_ms, e2e_ms, worker_image_tag, created_at, images) "
                         "VALUES (?, 'staging', ?, ?, ?, ?, ?, ?, 1)",
                         rows(OLD, NOW - 400 * DAY, "old") + rows(RECENT, NOW - 10 * DAY, "recent") + edge)
        for job_id, days in (("job-recent", 2), ("job-week", 6)):
            stamp = iso_ms(NOW - days * DAY)
            conn.execute(_JOB, (job_id, stamp, stamp, stamp))
    conn.close()
    return path


def _metrics(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT job_id FROM job_metrics")}
    finally:
        conn.close()


KEPT = {f"recent-{n:05d}" for n in range(RECENT)} | {"edge-at"}


def test_a_prune_of_more_metrics_than_a_batch_deletes_every_row_before_the_cutoff_and_keeps_the_rest(
        tmp_path):
    db = _backlog(tmp_path / "stack.sqlite")

    dry = retention.prune_local(STAGING, db, 30, 365, dry_run=True, now_s=NOW)
    assert dry.deleted["job_metrics"] == OLD + 1 and len(_metrics(db)) == OLD + RECENT + 2  # counted, kept
    report = retention.prune_local(STAGING, db, 30, 365, now_s=NOW)

    assert report.deleted["job_metrics"] == OLD + 1  # the backlog and edge-before
    assert report.remaining["job_metrics"] == len(KEPT) and _metrics(db) == KEPT
    assert report.remaining["jobs"] == 2 and report.deleted["jobs"] == 0
    # Again: nothing more is due.
    assert retention.prune_local(STAGING, db, 30, 365, now_s=NOW).deleted["job_metrics"] == 0


@pytest.mark.parametrize("statements", [1, 2, 3, 4])
def test_a_prune_cut_inside_the_metrics_batches_is_finished_by_the_next_and_ends_as_an_uncut_one(
        tmp_path, statements):
    db = _backlog(tmp_path / "stack.sqlite")
    uncut = tmp_path / "uncut.sqlite"
    shutil.copyfile(db, uncut)
    retention.prune_local(STAGING, uncut, 30, 365, now_s=NOW)

    conn = retention.open_stack_db(db)
    deleted = dict.fromkeys(service_retention.TABLES, 0)
    try:
        with pytest.raises(ConnectionError):
            asyncio.run(service_retention.prune(_CutOff(retention._SqliteSql(conn), statements),
                                                service_retention.Cutoffs.at(NOW, 30, 365), deleted=deleted))
    finally:
        conn.close()
    # What the cut prune says it deleted is what went.
    assert len(_metrics(db)) == OLD + RECENT + 2 - deleted["job_metrics"]
    assert KEPT <= _metrics(db)

    again = retention.prune_local(STAGING, db, 30, 365, now_s=NOW)

    assert deleted["job_metrics"] + again.deleted["job_metrics"] == OLD + 1
    assert _metrics(db) == _metrics(uncut) == KEPT
