"""A cost spike at 3 a.m.: `goldgate metrics <stack> --spend` names the GPU types the spend went to and the costliest
jobs (their ids, release, GPU, run time), so the on-call finds which jobs and which GPU without writing SQL."""

from __future__ import annotations

import json

import pytest
from ops_fixtures import NEW_TAG, run_sql

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform

H100 = "NVIDIA H100 80GB HBM3"


@pytest.fixture
def home(tmp_path, stack_db):
    """200 jobs on RTX 4090s at about $0.003-0.012 each, then three runaway jobs on an H100 at $2+ each."""
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("prod"), jobs=200, stack="prod", fail_every=20)
    run_sql(db, *(f"UPDATE job_metrics SET gpu_type = '{H100}', runpod_run_duration_ms = 3600000, "
                  f"cost_estimate_usd = {2.0 + i} WHERE job_id = 'job-{n:07d}'"
                  for i, n in enumerate((191, 195, 199))),
            # a damaged row (a cost that is text) is no cost: it neither tops the list nor breaks the sums
            "UPDATE job_metrics SET cost_estimate_usd = 'lots' WHERE job_id = 'job-0000011'")
    return home


def test_spend_names_the_gpu_type_and_the_costliest_jobs(home, capsys):
    assert main(["metrics", "prod", "--home", str(home), "--spend", "--json"]) == 0
    spend = json.loads(capsys.readouterr().out)["spend"]
    by_gpu = {g["gpu_type"]: g for g in spend["by_gpu_type"]}
    assert set(by_gpu) == {H100, "NVIDIA GeForce RTX 4090"}
    assert by_gpu[H100]["jobs"] == 3 and by_gpu[H100]["spend_usd"] == pytest.approx(9.0)
    assert spend["by_gpu_type"][0]["gpu_type"] == H100  # the biggest spender first
    top = spend["costliest_jobs"]
    assert [j["job_id"] for j in top[:3]] == ["job-0000199", "job-0000195", "job-0000191"]
    assert top[0]["gpu_type"] == H100 and top[0]["run_ms"] == 3600000 and top[0]["cost_usd"] == pytest.approx(4.0)
    assert top[0]["worker_image_tag"] == NEW_TAG
    assert "job-0000011" not in [j["job_id"] for j in top]


def test_spend_text_has_both_tables(home, capsys):
    assert main(["metrics", "prod", "--home", str(home), "--spend"]) == 0
    text = capsys.readouterr().out
    assert "GPU TYPE" in text and H100 in text
    assert "COSTLIEST JOBS" in text.upper() and "job-0000199" in text
    # without --spend the report is as before: no spend tables
    assert main(["metrics", "prod", "--home", str(home)]) == 0
    assert "job-0000199" not in capsys.readouterr().out


def test_the_cloud_reads_the_same_from_d1():
    # `goldgate metrics --spend --target cloud` runs the same two queries over D1's REST API
    from ops_fixtures import migrated_d1

    from goldgate.ops.metrics_report import report_from_d1

    with migrated_d1("d1-token-0123456789") as (_standin, d1, database):
        for n, (gpu, run_ms, cost) in enumerate([("NVIDIA GeForce RTX 4090", 9000, 0.0028),
                                                 (H100, 3600000, 4.0), ("NVIDIA GeForce RTX 4090", 8000, 0.0025)]):
            d1.query(database, "INSERT INTO job_metrics (job_id, stack, status, runpod_run_duration_ms, "
                               "worker_image_tag, gpu_type, cost_estimate_usd, created_at) "
                               "VALUES (?, 'staging', 'completed', ?, ?, ?, ?, ?)",
                     [f"job-{n}", run_ms, NEW_TAG, gpu, cost, f"2026-11-01T00:00:0{n}.000Z"])
        spend = report_from_d1(d1, database, "staging", spend=True)["spend"]
    assert [g["gpu_type"] for g in spend["by_gpu_type"]] == [H100, "NVIDIA GeForce RTX 4090"]
    assert [j["job_id"] for j in spend["costliest_jobs"]] == ["job-1", "job-0", "job-2"]
