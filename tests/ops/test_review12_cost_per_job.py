"""`goldgate metrics` prints the cost per job the API reports: the mean over the jobs that have an estimate.
A job recovered from the outcome its worker stored ran, but RunPod's timings (so its cost) are unknown: counting
it as $0 halved COST/JOB while COST/1K IMG, beside it, leaves its images out."""

from __future__ import annotations

import sqlite3

import pytest
from ops_fixtures import OLD_TAG

from goldgate.local.platform import LocalPlatform
from goldgate.ops.metrics_report import report_from_sqlite
from service.metrics import compute_sqlite


def test_cost_per_job_leaves_out_jobs_whose_cost_is_unknown_as_the_api_does(tmp_path, stack_db):
    db = stack_db(LocalPlatform(tmp_path / "home").db_path("staging"), jobs=100, fail_every=1_000)
    with sqlite3.connect(db) as conn:  # as a recovery from the result store writes them: images, no cost
        conn.executemany(
            "INSERT INTO job_metrics (job_id, stack, status, worker_image_tag, workflow_version, created_at, images) "
            "VALUES (?, 'staging', 'completed', ?, 'sdxl-txt2img@1.0.0', '2026-11-01T00:00:00.000Z', 1)",
            [(f"{i:032x}", OLD_TAG) for i in range(100)])

    api = compute_sqlite(db)["overall"]
    report = report_from_sqlite(db, "staging")["overall"]

    assert report["count"] == 200 and api["cost_mean_usd"] is not None
    assert report["cost_per_job_usd"] == pytest.approx(api["cost_mean_usd"])
    images_per_costed_job = 1
    assert report["cost_per_1000_images_usd"] == pytest.approx(report["cost_per_job_usd"] * 1000 / images_per_costed_job)
