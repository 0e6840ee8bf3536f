"""Review 29 (mut): the verdict line of `goldgate golden`. With every case passed, it names what failed the run (at
most two, each cut at its first " (", then how many more); with a case failed it says "N of M cases passed" alone
(the failure lines below list everything), and a case's own failures are never named as the run's."""

from __future__ import annotations

from goldgate.commands.release import _render_golden

A = "local/worker@sha256:" + "a" * 64
WF = [f"workflow wf-{n}: staging serves it and no golden case runs it (add a case)" for n in "xyz"]


def _report(square_passed: bool, failures: list[str]) -> dict:
    checks = [{"name": "status", "passed": True, "detail": "completed"}]
    if not square_passed:
        checks.append({"name": "perceptual_hash", "passed": False, "detail": "distance 30 (max 8)"})
    cases = [{"id": "square", "passed": square_passed, "latency_s": 1.0, "checks": checks},
             {"id": "batch", "passed": True, "latency_s": 1.0, "checks": checks[:1]}]
    return {"schema": "goldgate.golden-report.v1", "suite": "full", "stack": "staging", "image": A, "target": "local",
            "passed": False, "cases": cases, "failures": failures, "latency_s": {"p50": 1.0, "p95": 1.0, "mean": 1.0,
                                                                              "max": 1.0},
            "wall_time_s": 1.5, "sum_latency_s": 2.0, "references_updated": False}


def _verdict(report: dict) -> str:
    [line] = [line for line in _render_golden(report).splitlines() if " on staging (" in line]
    return line.split(f"({A}): ", 1)[1]


def test_every_case_passed_names_two_run_failures_and_counts_the_rest() -> None:
    assert _verdict(_report(True, WF)) == ("FAILED (2 of 2 cases passed, but the run failed: workflow wf-x: staging "
                                           "serves it and no golden case runs it; workflow wf-y: staging serves it "
                                           "and no golden case runs it; and 1 more)")


def test_a_failed_case_is_the_verdict_alone_and_its_failure_is_not_the_runs() -> None:
    own = "square: perceptual_hash: distance 30 (max 8)"
    assert _verdict(_report(False, [own, WF[0]])) == "FAILED (1 of 2 cases passed)"
    # every case passed but one line is a case's (a report written by hand): only the run's own are named
    report = _report(True, [own, WF[0]])
    report["cases"][0]["checks"].append({"name": "perceptual_hash", "passed": False, "detail": "distance 30 (max 8)"})
    report["cases"][0]["passed"] = True
    assert _verdict(report) == ("FAILED (2 of 2 cases passed, but the run failed: workflow wf-x: staging serves it "
                                "and no golden case runs it)")
