"""The lines about jobs and workers judge the image the stack pins now: its failed jobs, its error rate, its
workers' start-up lines. An image rolled back or replaced neither hides nor keeps red what the pinned one does."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from ops_fixtures import NEW_TAG, OLD_TAG, build_stack_db
from test_checklist import healthy  # noqa: F401 -- the module's healthy deployment, a pytest fixture

from goldgate.logs import JsonLogger
from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, read_job_facts, read_log_facts
from goldgate.ops.metrics_report import report_from_sqlite


def _line(facts: Facts, check: str) -> checklist.CheckResult:
    return next(r for r in checklist.run_checks(facts) if r.id == check)


def _on(facts: Facts, image: str) -> Facts:
    """The same deployment with STAGING (the judged stack) pinned to `image`."""
    return dataclasses.replace(facts, images={**facts.images, "staging": image})


def test_failed_jobs_of_the_pinned_image_turn_the_every_job_completed_line_red(healthy, tmp_path):  # noqa: F811
    # 21 jobs, every 7th failed: jobs 7 and 21 ran on the pinned (odd, NEW) image, 14 on the older one.
    # Before: PASS "19 completed jobs, each with result images".
    db = build_stack_db(tmp_path / "db.sqlite", jobs=21, fail_every=7)
    facts = dataclasses.replace(healthy, jobs=read_job_facts(db))
    line = _line(facts, "all_jobs_images")
    assert line.status == checklist.FAIL, line.evidence
    assert f"2 of 11 jobs of {NEW_TAG} did not complete (2 failed)" in line.evidence


def test_failures_only_of_an_image_no_longer_pinned_leave_the_line_green_and_say_whose_jobs(healthy, tmp_path):  # noqa: F811
    db = build_stack_db(tmp_path / "db.sqlite", jobs=20, fail_every=10)  # jobs 10 and 20: the older image's
    line = _line(dataclasses.replace(healthy, jobs=read_job_facts(db)), "all_jobs_images")
    assert line.status == checklist.PASS, line.evidence
    assert f"10 jobs of {NEW_TAG} completed" in line.evidence
    back = _line(_on(dataclasses.replace(healthy, jobs=read_job_facts(db)), OLD_TAG), "all_jobs_images")
    assert back.status == checklist.FAIL and f"2 of 10 jobs of {OLD_TAG} did not complete" in back.evidence


def test_the_error_rate_judges_the_pinned_release_not_a_bad_one_before_it(healthy, tmp_path):  # noqa: F811
    # A bad release (every job of OLD failed) then a clean one the gate accepted and promoted (NEW). Before: the
    # line stayed red on all-time rows, "50.00% exceeds 5.00%", until good jobs diluted it.
    db = build_stack_db(tmp_path / "db.sqlite", jobs=200, fail_every=2)
    facts = dataclasses.replace(healthy, metrics=report_from_sqlite(db, "staging"), jobs=read_job_facts(db))
    line = _line(facts, "error_rate")
    assert line.status == checklist.PASS, line.evidence
    assert f"over 100 jobs of {NEW_TAG}" in line.evidence and "earlier images not judged" in line.evidence
    bad = _line(_on(facts, OLD_TAG), "error_rate")
    assert bad.status == checklist.FAIL
    assert f"error rate 100.00% exceeds 5.00% over 100 jobs of {OLD_TAG}" in bad.evidence


def test_a_pinned_image_no_job_ran_on_yet_has_no_error_rate(healthy, tmp_path):  # noqa: F811
    fresh = "local/worker@sha256:" + "c" * 64
    line = _line(_on(healthy, fresh), "error_rate")
    assert line.status == checklist.NA and fresh in line.evidence


def _worker_log(directory: Path, image: str, event: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"worker-{image[-6:]}.log").open("a") as fh:
        log = JsonLogger("worker", fh, stack="staging", workflow_version="sdxl-txt2img@1.0.0", worker_image_tag=image)
        if event == "models_loaded":
            log.info("models_loaded", message="6 model files present")
        else:
            log.error("preflight_failed", message="checkpoints/sd_xl_base_1.0.safetensors: missing")


def test_the_startup_line_judges_the_pinned_images_workers_and_their_preflight_failures(healthy, tmp_path):  # noqa: F811
    # The pinned image lost a model: its workers logged preflight_failed and exited. Before: PASS on the
    # models_loaded lines of the previous image's workers.
    logs = tmp_path / "logs"
    _worker_log(logs, OLD_TAG, "models_loaded")
    _worker_log(logs, NEW_TAG, "preflight_failed")
    facts = dataclasses.replace(healthy, logs=read_log_facts(logs))
    line = _line(facts, "startup_log")
    assert line.status == checklist.FAIL, line.evidence
    assert f"1 `preflight_failed` line(s) from workers of {NEW_TAG}" in line.evidence
    assert "goldgate doctor --stack staging" in line.evidence
    # only the older image ever started: nothing says the pinned one loads its models
    only_old = tmp_path / "only-old"
    _worker_log(only_old, OLD_TAG, "models_loaded")
    line = _line(dataclasses.replace(healthy, logs=read_log_facts(only_old)), "startup_log")
    assert line.status == checklist.FAIL and f"no `models_loaded` line from a worker of {NEW_TAG}" in line.evidence
    _worker_log(only_old, NEW_TAG, "models_loaded")
    line = _line(dataclasses.replace(healthy, logs=read_log_facts(only_old)), "startup_log")
    assert line.status == checklist.PASS and f"1 `models_loaded` start-up line(s) from workers of {NEW_TAG}" \
        in line.evidence


def test_the_mean_latency_exit_line_judges_the_pinned_images_jobs(healthy, tmp_path):  # noqa: F811
    # The release before took an hour a job; the pinned one about half a minute. Before: FAIL "mean end-to-end
    # 1812.x s exceeds 6 minutes" on all-time rows.
    db = build_stack_db(tmp_path / "db.sqlite", jobs=40, fail_every=1000)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE job_metrics SET e2e_ms = 3600000 WHERE worker_image_tag = ?", (OLD_TAG,))
    conn.close()
    facts = dataclasses.replace(healthy, jobs=read_job_facts(db))
    line = _line(facts, "mean_latency")
    assert line.status == checklist.PASS, line.evidence
    assert f"<= 360 s over completed jobs of {NEW_TAG}" in line.evidence
    slow = _line(_on(facts, OLD_TAG), "mean_latency")
    assert slow.status == checklist.FAIL
    assert f"mean end-to-end 3600.0 s exceeds 6 minutes over completed jobs of {OLD_TAG}" in slow.evidence
