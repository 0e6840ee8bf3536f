"""Review 30 mutation audit (mut30): the figures and words of `goldgate metrics --spend` that a cost spike is read
from, each of which a mutant changed unseen. Per GPU type: failed counts timed-out jobs too, the cost per job is
over the jobs that have a cost (not every job), the mean run time is given, a damaged row (a cost or run time held
as text) counts for nothing; `--since` bounds both tables; the costliest jobs
are ten. The text: spend in cents, the cost per job and a job's cost to five places, a release by its short tag, a
job with no GPU type as "(none)", its creation time as `YYYY-MM-DD HH:MM`, and a window with no cost said so."""

from __future__ import annotations

import pytest
from ops_fixtures import run_sql

from goldgate.ops.metrics_report import render_spend, report_from_sqlite

A100 = "NVIDIA A100 80GB PCIe"
RTX = "NVIDIA GeForce RTX 4090"
TAG = "example.invalid/goldgate-worker@sha256:" + "ab12cd34ef56" + "0" * 52
SINCE = "2026-11-01T00:00:00.000Z"


def _row(job: str, status: str, run: object, gpu: str | None, cost: object, at: str) -> str:
    value = lambda v: "NULL" if v is None else (f"'{v}'" if isinstance(v, str) else str(v))
    return ("INSERT INTO job_metrics (job_id, stack, status, runpod_run_duration_ms, worker_image_tag, "
            f"workflow_version, gpu_type, cost_estimate_usd, created_at) VALUES ('{job}', 'prod', '{status}', "
            f"{value(run)}, '{TAG}', 'sdxl-txt2img@1.0.0', {value(gpu)}, {value(cost)}, '{at}')")


@pytest.fixture
def db(tmp_path, stack_db):
    db = stack_db(tmp_path / "prod.sqlite", jobs=0, stack="prod")
    run_sql(db,
            _row("a-done", "completed", 10000, A100, 1.0, "2026-11-02T10:00:00.000Z"),
            _row("a-failed", "failed", "x", A100, 2.0, "2026-11-02T10:01:00.000Z"),        # a damaged run time
            _row("a-timed-out", "timed_out", 20000, A100, None, "2026-11-02T10:02:00.000Z"),  # no cost
            _row("a-damaged", "completed", 5000, A100, "lots", "2026-11-02T10:03:00.000Z"),    # a cost held as text
            _row("no-gpu", "completed", 1000, None, 0.5, "2026-11-02T10:04:00.000Z"),
            _row("before", "completed", 1000, "NVIDIA H100 80GB HBM3", 50.0, "2026-10-01T00:00:00.000Z"),
            *(_row(f"cheap-{n:02d}", "completed", 900, RTX, round(0.01 * n, 2), f"2026-11-03T00:{n:02d}:00.000Z")
              for n in range(1, 13)))
    return db


def test_spend_per_gpu_type_counts_what_a_cost_spike_is_read_from(db):
    spend = report_from_sqlite(db, "prod", since=SINCE, spend=True)["spend"]
    by_gpu = {g["gpu_type"]: g for g in spend["by_gpu_type"]}
    assert set(by_gpu) == {A100, RTX, None}, "a job before --since was counted"
    a100 = by_gpu[A100]
    assert (a100["jobs"], a100["errors"]) == (4, 2), "a timed-out job is a failed one"
    assert a100["spend_usd"] == pytest.approx(3.0), "a cost held as text was spent"
    assert a100["cost_per_job_usd"] == pytest.approx(1.5), "the cost per job is over the jobs that have a cost"
    assert a100["run_ms_mean"] == round((10000 + 20000 + 5000) / 3)


def test_the_costliest_jobs_are_ten_within_the_window_with_their_run_time(db):
    top = report_from_sqlite(db, "prod", since=SINCE, spend=True)["spend"]["costliest_jobs"]
    assert len(top) == 10
    assert [j["job_id"] for j in top[:4]] == ["a-failed", "a-done", "no-gpu", "cheap-12"]
    assert top[0]["run_ms"] is None, "a run time held as text was shown as one"
    assert "before" not in [j["job_id"] for j in top] and "a-damaged" not in [j["job_id"] for j in top]


def test_the_spend_text_reads_as_money_tags_and_times(db):
    text = render_spend(report_from_sqlite(db, "prod", since=SINCE, spend=True)["spend"])
    gpu_line = next(line for line in text.splitlines() if line.startswith(A100))
    assert "$3.00 " in gpu_line + " " and "$1.50000" in gpu_line, gpu_line
    job_line = next(line for line in text.splitlines() if line.startswith("a-failed"))
    assert "goldgate-worker@ab12cd34ef56" in job_line and TAG not in job_line, job_line
    assert "$2.00000" in job_line and "2026-11-02 10:01" in job_line, job_line
    no_gpu = [line for line in text.splitlines() if "(none)" in line]
    assert len(no_gpu) == 2, text  # its row of the GPU table and its job's row
    later = render_spend(report_from_sqlite(db, "prod", since="2027-01-01T00:00:00.000Z", spend=True)["spend"])
    assert "costliest jobs: none has a cost estimate" in later, later
