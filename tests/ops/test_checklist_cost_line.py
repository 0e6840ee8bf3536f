"""The checklist's cost line judges only jobs there is something to price: a job recovered from the result store
(or one RunPod reported no executionTime for) has no run time and, by the documented rule, no cost. Counting it
turned the line red for good after the runbook's own recovery rehearsal, naming no job."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from ops_fixtures import build_stack_db

from goldgate.ops.checklist import FAIL, NA, PASS, cost_estimate
from goldgate.ops.checklist_facts import Facts, read_job_facts


def _verdict(db: Path):
    return cost_estimate(Facts(stack="staging", now=datetime.now(UTC), jobs=read_job_facts(db)))


def test_a_completed_job_without_a_run_time_has_no_cost_by_design_and_the_line_stays_green(tmp_path: Path) -> None:
    db = build_stack_db(tmp_path / "s.sqlite", 20)
    with sqlite3.connect(db) as conn:  # recovered from the store: no RunPod timings, so nothing to price
        conn.execute("UPDATE job_metrics SET runpod_run_duration_ms = NULL, runpod_queue_duration_ms = NULL, "
                     "e2e_ms = NULL, cost_estimate_usd = NULL WHERE job_id = 'job-0000003'")
    verdict, detail = _verdict(db)
    assert verdict == PASS, detail
    assert "all 19 completed jobs with a run time" in detail and "1 without a run time" in detail


def test_a_priced_job_without_its_cost_fails_the_line_naming_it(tmp_path: Path) -> None:
    db = build_stack_db(tmp_path / "s.sqlite", 20)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE job_metrics SET cost_estimate_usd = NULL WHERE job_id = 'job-0000007'")
    verdict, detail = _verdict(db)
    assert verdict == FAIL and "job-0000007" in detail and "prices_per_gpu_second" in detail, detail


def test_only_unmeasured_completions_leave_the_line_not_applicable(tmp_path: Path) -> None:
    db = build_stack_db(tmp_path / "s.sqlite", 3, fail_every=1000)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE job_metrics SET runpod_run_duration_ms = NULL, cost_estimate_usd = NULL")
    assert _verdict(db)[0] == NA
