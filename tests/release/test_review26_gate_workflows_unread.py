"""A full golden run whose only failure is that the served workflows could not be read (GET /api/workflows answered
503 on every try) is not the image's fault: the gate said "fix the cause and deploy the fixed build" in report_passed
while report_workflows_covered said to run the golden tests again. Both now send the operator to run them again."""

from __future__ import annotations

from test_review26_fixb_failed_golden_advice import NOW, THR, A, _recorded, _report

from goldgate.release.gate import ErrorRate, evaluate

UNREAD = ("the workflows staging serves could not be read (GET /api/workflows: it answered 503: busy (4 attempts)), "
          "so nothing shows that a golden case runs each of them; run the golden tests again")


def test_a_run_that_could_not_read_the_served_workflows_is_no_reason_to_rebuild() -> None:
    report = _report(failures=[UNREAD], cases=[{"id": "square", "passed": True, "checks": []}],
                     workflows={"served": None, "uncovered": None, "error": "it answered 503: busy (4 attempts)"})
    decision = evaluate(report, A, THR, ErrorRate(40, 0, "t"), now=NOW, recorded=_recorded(passed=False))
    detail = {c.name: c.detail for c in decision.conditions}["report_passed"]
    assert not decision.passed
    assert "deploy the fixed build" not in detail, detail
    assert "the image is not at fault: let the stack answer GET /api/workflows (report_workflows_covered), then run " \
           "`goldgate golden staging` on the same image" in detail, detail


def test_an_image_failure_beside_it_still_asks_for_a_fix() -> None:
    report = _report(failures=[UNREAD, "square: perceptual_hash: distance 30 (max 8)"],
                     cases=[{"id": "square", "passed": False,
                             "checks": [{"name": "perceptual_hash", "passed": False, "detail": "distance 30 (max 8)"}]}],
                     workflows={"served": None, "uncovered": None, "error": "it answered 503: busy (4 attempts)"})
    decision = evaluate(report, A, THR, ErrorRate(40, 0, "t"), now=NOW, recorded=_recorded(passed=False))
    detail = {c.name: c.detail for c in decision.conditions}["report_passed"]
    assert "fix the cause and deploy the fixed build to staging" in detail, detail
