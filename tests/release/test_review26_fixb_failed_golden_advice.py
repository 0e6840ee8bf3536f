"""Review 26 (fixb): after a golden run that failed on STAGING, `goldgate promote --check` showed `report_recorded
FAILED ... run goldgate golden staging` beside `report_passed FAILED`: the failure said twice, and a remedy (another
golden run of the same image) that cannot help. And report_passed quoted 3 of 8 failures as if they were all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from goldgate.release.gate import ErrorRate, PromotionRefused, evaluate
from goldgate.spec import Thresholds

A = "local/worker@sha256:" + "a" * 64
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
THR = Thresholds(golden_mean_latency_s=360, error_rate=0.05, report_max_age_s=3600)
FAILURES = [f"case{i}: perceptual_hash: distance 30 (max 8)" for i in range(8)]


def _report(**over: object) -> dict:
    base = {"schema": "goldgate.golden-report.v1", "suite": "full", "stack": "staging", "image": A,
            "passed": False, "failures": FAILURES, "finished_at": (NOW - timedelta(minutes=5)).isoformat(),
            "latency_s": {"mean": 12.5}, "references_updated": False, "workflow_version": "2026.11.0"}
    return {**base, **over}


def _recorded(passed: bool) -> dict:
    return {"kind": "golden", "seq": 7, "stack": "staging", "image": A, "suite": "full", "passed": passed}


def _conditions(report: dict, recorded: dict | None) -> dict[str, tuple[bool, str]]:
    d = evaluate(report, A, THR, ErrorRate(40, 0, "t"), now=NOW, recorded=recorded)
    return {c.name: (c.passed, c.detail) for c in d.conditions}


def test_a_failed_run_is_refused_once_with_a_fix_not_another_golden_run() -> None:
    report, recorded = _report(), _recorded(passed=False)
    got = _conditions(report, recorded)
    passed_ok, passed_detail = got["report_passed"]
    recorded_ok, recorded_detail = got["report_recorded"]
    assert not passed_ok
    assert not evaluate(report, A, THR, ErrorRate(40, 0, "t"), now=NOW, recorded=recorded).passed
    # the report is the failed run's own, as the ledger recorded it: nothing wrong with its record
    assert recorded_ok, recorded_detail
    assert "ledger #7" in recorded_detail and "run `goldgate golden" not in recorded_detail
    # the remedy of a failed run: a fix, a new candidate on STAGING, then its golden run (docs/RUNBOOK.md)
    assert "fix the cause and deploy the fixed build to staging, then run `goldgate golden staging` on it" \
        in passed_detail
    message = str(PromotionRefused(evaluate(report, A, THR, ErrorRate(40, 0, "t"), now=NOW, recorded=recorded)))
    assert "report_passed" in message and "report_recorded" not in message


def test_the_failures_not_quoted_are_counted() -> None:
    detail = _conditions(_report(), _recorded(passed=False))["report_passed"][1]
    assert "case0: perceptual_hash" in detail and "case2: perceptual_hash" in detail
    assert "case3" not in detail and "; and 5 more in the report)" in detail
    three = _conditions(_report(failures=FAILURES[:3]), _recorded(passed=False))["report_passed"][1]
    assert "case2: perceptual_hash: distance 30 (max 8))" in three and "more" not in three


def test_a_report_that_says_it_passed_where_its_run_failed_is_still_refused() -> None:
    # The failed run's report edited to read passed: report_passed has nothing to say, so the record must.
    got = _conditions(_report(passed=True, failures=[]), _recorded(passed=False))
    assert got["report_passed"][0]
    ok, detail = got["report_recorded"]
    assert not ok and "is not a passing full run" in detail


def test_a_failed_run_of_another_image_or_stack_is_no_record_of_this_report() -> None:
    other = {**_recorded(passed=False), "image": "local/worker@sha256:" + "b" * 64}
    assert not _conditions(_report(), other)["report_recorded"][0]
    smoke = {**_recorded(passed=False), "suite": "smoke"}
    assert not _conditions(_report(), smoke)["report_recorded"][0]
    assert not _conditions(_report(), None)["report_recorded"][0]
