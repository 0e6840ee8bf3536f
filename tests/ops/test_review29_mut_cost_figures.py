"""Review 29 (mut): the cost figures of `GET /api/metrics` and `goldgate metrics`, as session 28's mutants of them
left open. A sum of costs is given to 12 significant digits (0.1 + 0.2 is $0.3, not 0.30000000000000004, in the
report of every group, the versions' too), and completed jobs whose cost is $0 have a cost per completed job of $0,
not none."""

from __future__ import annotations

from pathlib import Path

from metrics_support import fill_job_metrics

from goldgate.ops import metrics_report
from service.metrics import compute_sqlite

T = "2026-11-28T10:00:00.000Z"


def test_summed_costs_are_given_without_the_float_sums_last_bits(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    fill_job_metrics(db, [("wf@1", "completed", 1000, 2000, 0.1, 1, T),
                          ("wf@1", "completed", 1000, 2000, 0.2, 1, T)], "local/worker@sha256:" + "a" * 64)
    report = compute_sqlite(db, by_workflow_version=True)
    for group in (report["overall"], report["by_worker_image_tag"][0], report["by_workflow_version"][0]):
        assert (group["cost_total_usd"], group["cost_mean_usd"]) == (0.3, 0.15), group


def test_completed_jobs_that_cost_nothing_cost_nothing_per_completed_job(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    fill_job_metrics(db, [("wf@1", "completed", 0, 10, 0.0, 1, T),
                          ("wf@1", "completed", 0, 10, 0.0, 1, T)], "local/worker@sha256:" + "b" * 64)
    report = metrics_report.report_from_sqlite(db, "staging", by_workflow_version=True)
    for group in (report["overall"], report["by_worker_image_tag"][0], report["by_workflow_version"][0]):
        assert group["cost_per_completed_job_usd"] == 0.0, group
