"""`promote --check` on a report whose every case failed before its job's final status (a wrong API token, a stack
down): no case was timed, and the gate's mean-latency line read `mean latency None s (max 360 s)`."""

from __future__ import annotations

from test_gate_and_lock import NOW, RECORDED, THR, A, report

from goldgate.release.gate import ErrorRate, evaluate


def _line(rep: dict) -> tuple[bool, str]:
    decision = evaluate(rep, A, THR, ErrorRate(10, 0, "t"), now=NOW, recorded=RECORDED)
    line = next(c for c in decision.conditions if c.name == "mean_latency")
    return line.passed, line.detail


def test_a_report_with_no_timed_case_fails_the_mean_latency_line_saying_why():
    passed, detail = _line(report(passed=False, latency_s={"count": 0, "mean": None, "p50": None}))
    assert not passed
    assert "None" not in detail and "no case of the run reached a final status" in detail


def test_a_timed_report_still_names_its_mean():
    passed, detail = _line(report(latency_s={"count": 3, "mean": 12.5}))
    assert passed and detail.startswith("mean latency 12.5 s (max ")
