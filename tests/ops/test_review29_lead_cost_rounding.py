"""Review 29 (lead, from the mutation audit): every cost figure of `goldgate metrics --json` is given to 12
significant digits, as `cost_per_job_usd` is: the cost per completed job and per 1,000 images, computed in Python
from the SQL sums, carried a float division's last bits (0.23333333333333336, 139.99999999999997) that D1 and an
older local SQLite give differently."""

from __future__ import annotations

from pathlib import Path

from metrics_support import fill_job_metrics

from goldgate.ops import metrics_report

T = "2026-11-28T10:00:00.000Z"


def test_the_derived_cost_figures_are_rounded_as_the_summed_ones(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    fill_job_metrics(db, [("wf@1", "completed", 1000, 2000, 0.1, 1, T), ("wf@1", "completed", 1000, 2000, 0.2, 1, T),
                          ("wf@1", "completed", 1000, 2000, 0.4, 3, T)], "local/worker@sha256:" + "c" * 64)
    report = metrics_report.report_from_sqlite(db, "staging", by_workflow_version=True)
    for group in (report["overall"], report["by_worker_image_tag"][0]):
        assert group["cost_per_job_usd"] == 0.233333333333, group
        assert group["cost_per_completed_job_usd"] == 0.233333333333, group
        assert group["cost_per_1000_images_usd"] == 140.0, group
