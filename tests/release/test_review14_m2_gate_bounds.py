"""The gate's thresholds are limits a release may reach, not pass: STAGING's error rate, the report's mean latency
and its age are each allowed up to the spec's value and refused one step beyond it. Before these tests nothing
held where the limits lie: a gate that let a 20% error rate through under a 5% threshold passed every test."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_gate_and_lock import NOW, RECORDED, THR, A, failed, report

from goldgate.release.gate import ErrorRate, PromotionRefused, evaluate

CALM = ErrorRate(40, 0, "t")


def _gate(rep: dict, rate: ErrorRate = CALM):  # type: ignore[no-untyped-def]
    return evaluate(rep, A, THR, rate, now=NOW, recorded=RECORDED)


def test_staging_at_its_error_rate_threshold_is_promoted_and_one_more_failure_is_refused() -> None:
    assert THR.error_rate == 0.05
    at = _gate(report(), ErrorRate(20, 1, "t"))                   # 1 of 20: exactly 5%
    assert at.passed, failed(at)
    over = _gate(report(), ErrorRate(19, 1, "t"))                 # 1 of 19: 5.3%
    assert failed(over) == ["error_rate"]
    assert "1 of 19 STAGING jobs failed since t (5.3%, max 5.0%)" in str(PromotionRefused(over))
    assert failed(_gate(report(), ErrorRate(10, 2, "t"))) == ["error_rate"]       # 20%


@pytest.mark.parametrize(("mean", "passes"), [(360, True), (360.0, True), (360.5, False), (0, True)])
def test_a_mean_latency_up_to_the_threshold_passes_and_beyond_it_is_refused(mean: float, passes: bool) -> None:
    assert THR.golden_mean_latency_s == 360
    decision = _gate(report(latency_s={"mean": mean}))
    assert decision.passed is passes and failed(decision) == ([] if passes else ["mean_latency"])


@pytest.mark.parametrize("mean", [None, "12.5"])
def test_a_mean_latency_that_is_not_a_number_is_refused(mean: object) -> None:
    assert failed(_gate(report(latency_s={"mean": mean}))) == ["mean_latency"]


@pytest.mark.parametrize(("age_s", "passes"), [(3600, True), (3601, False), (0, True)])
def test_a_report_as_old_as_the_max_age_passes_and_a_second_older_is_stale(age_s: int, passes: bool) -> None:
    assert THR.report_max_age_s == 3600
    decision = _gate(report(finished_at=(NOW - timedelta(seconds=age_s)).isoformat()))
    assert decision.passed is passes and failed(decision) == ([] if passes else ["report_fresh"])
    if not passes:
        assert "report_fresh: report finished 3601 s ago (max 3600 s)" in str(PromotionRefused(decision))


def test_a_report_dated_without_a_time_zone_is_refused_not_a_crash() -> None:
    decision = _gate(report(finished_at=(NOW - timedelta(minutes=5)).replace(tzinfo=None).isoformat()))
    assert failed(decision) == ["report_fresh"]
    assert "no readable finished_at" in str(PromotionRefused(decision))


def test_a_report_that_no_golden_run_recorded_names_the_suite_cases_it_left_out() -> None:
    """With the suite's ids but no recorded run to vouch for its definitions, the report's own case list is checked:
    the refusal names the cases that did not run, not only that the report is unrecorded."""
    rep = report(cases=[{"id": "square"}, {"id": 7}, "batch"])
    decision = evaluate(rep, A, THR, ErrorRate(40, 0, "t"), now=NOW, recorded=None, suite=["square", "batch", "xl"])
    assert failed(decision) == ["report_cases", "report_recorded"]
    assert "report_cases: the report ran 1 of the 3 golden cases (missing: batch, xl)" in str(PromotionRefused(decision))
    whole = evaluate(report(cases=[{"id": "square"}, {"id": "batch"}]), A, THR, ErrorRate(40, 0, "t"), now=NOW,
                     recorded=RECORDED, suite=["square", "batch"])
    assert whole.passed, failed(whole)
