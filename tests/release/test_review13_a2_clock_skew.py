"""A golden report dated a little ahead of this machine's clock (the CI runner that ran it keeps a clock a few
seconds fast) is evidence: before, the gate refused any report "in the future" (`0 <= age`) while the checklist's DR
line allowed 300 s of skew, so a promotion seconds after its golden run on another machine was refused as not fresh.
Beyond the allowed skew both the gate and the checklist's `golden_report_latest` refuse it, naming the future."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from test_gate_and_lock import NOW, RECORDED, THR, A, failed, report

from goldgate.ops import checklist
from goldgate.release.gate import ErrorRate, PromotionRefused, evaluate

CLOCK_SKEW_S = 300   # the allowance the checklist's DR line has always made (goldgate/ops/checklist.py)


def _gate(ahead_s: float):  # type: ignore[no-untyped-def]
    return evaluate(report(finished_at=(NOW + timedelta(seconds=ahead_s)).isoformat()), A, THR,
                    ErrorRate(10, 0, "t"), now=NOW, recorded=RECORDED)


@pytest.mark.parametrize("ahead_s", [3, 120, CLOCK_SKEW_S])
def test_a_report_a_little_ahead_of_this_clock_opens_the_gate(ahead_s: float) -> None:
    decision = _gate(ahead_s)
    assert decision.passed, failed(decision)
    fresh = next(c for c in decision.conditions if c.name == "report_fresh")
    assert f"{ahead_s} s in the future by this clock" in fresh.detail


def test_a_report_further_ahead_is_refused_as_from_the_future() -> None:
    decision = _gate(CLOCK_SKEW_S + 60)
    assert failed(decision) == ["report_fresh"]
    message = str(PromotionRefused(decision))
    assert f"{CLOCK_SKEW_S + 60} s in the future" in message and "check the clock" in message


def _checklist_line(ahead_s: float) -> tuple[str, str]:
    facts = SimpleNamespace(golden={"finished_at": (NOW + timedelta(seconds=ahead_s)).isoformat()}, now=NOW,
                            specs={"staging": SimpleNamespace(thresholds=THR)}, golden_error=None,
                            golden_path="scripts/golden-tests/reports/latest.json")
    return checklist.golden_report_latest(facts)


def test_the_checklist_line_allows_the_same_skew_as_the_gate() -> None:
    status, evidence = _checklist_line(120)
    assert status == checklist.PASS and "120 s in the future by this clock" in evidence
    status, evidence = _checklist_line(CLOCK_SKEW_S + 60)
    assert status == checklist.FAIL and f"{CLOCK_SKEW_S + 60} s in the future" in evidence
    assert "which `goldgate promote` refuses" in evidence
