"""Review 27 (mutrel): the gate's advice after session 26, where mutants of gate.py survived the suite. A failed
golden run that a later run of the same image superseded must say so (not "fix the cause and rebuild"); a case that
both lacks its reference and drew a wrong image is the image's fault; the workflow_version advice names the stacks
file of the report's target; a report whose `workflows` is malformed is refused, not a crash."""

from __future__ import annotations

from pathlib import Path

from release_support import StandInApi, render_png, standin_api
from test_gate_and_lock import Stacks
from test_review26_fixb_failed_golden_advice import NOW, THR, A, _recorded, _report

from goldgate.release.gate import ErrorRate, evaluate
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate
from goldgate.release.verification import GoldenPaths, run_golden


def _details(report: dict, **kwargs: object) -> dict[str, tuple[bool, str]]:
    decision = evaluate(report, A, THR, ErrorRate(40, 0, "t"), now=NOW, **kwargs)
    return {c.name: (c.passed, c.detail) for c in decision.conditions}


def test_a_failed_run_a_later_run_of_the_same_image_superseded_points_at_the_later_run() -> None:
    later = {"kind": "golden", "seq": 9, "stack": "staging", "image": A, "suite": "full", "passed": True}
    ok, detail = _details(_report(), recorded=_recorded(passed=False), superseded_by=later)["report_recorded"]
    assert not ok
    assert ("a later golden run on staging for " + A + " (ledger #9) passed; only the newest run for a digest "
            "counts: gate on its report") in detail, detail


def test_a_case_with_no_reference_that_also_drew_the_wrong_size_is_the_images_fault(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # `square` has no reference yet (a new case) and its render is 32x32 where 64x64 is expected: the missing
    # reference is the suite's, the size is the image's, so the gate asks for a fix, not for a reference alone.
    (paths.references_dir / "square.png").unlink()

    def renders(workflow: str, inputs: dict) -> list[bytes]:
        w, h = (32, 32) if workflow == "wf-a" else (int(inputs["width"]), int(inputs["height"]))
        return [render_png(f"{workflow}:{inputs['prompt']}:{inputs['seed']}:{i}", w, h)
                for i in range(int(inputs.get("batch_size", 1)))]

    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A, renders=renders)) as api:
        stacks = Stacks(api.url, {"staging": A})
        run = run_golden(stacks, "staging", ledger, paths=paths, poll_s=0.01)
        decision = check_gate(stacks, ledger, run.path, cases_dir=paths.cases_dir,
                              references_dir=paths.references_dir)[0]
    square = next(c for c in run.report["cases"] if c["id"] == "square")
    failed_checks = {c["name"] for c in square["checks"] if not c["passed"]}
    assert {"perceptual_hash", "image[0].dimensions"} <= failed_checks, square["checks"]
    detail = {c.name: c.detail for c in decision.conditions}["report_passed"]
    assert "the image is not at fault" not in detail, detail
    assert "fix the cause and deploy the fixed build to staging" in detail, detail


def test_the_workflow_version_advice_names_the_cloud_stack_files_for_a_cloud_report() -> None:
    versions = {"staging": "2026.11.0", "prod": "2026.12.0"}
    ok, detail = _details(_report(target="cloud"), workflow_versions=versions)["report_workflow_version"]
    assert not ok
    assert ("set workflow_version alike in stacks/Pulumi.staging.yaml (goldgate:spec: workflow_version) and "
            "stacks/Pulumi.prod.yaml (goldgate:spec: workflow_version)") in detail, detail
    assert "stacks/local.yaml" not in detail and "goldgate down" not in detail


def test_the_workflow_version_advice_names_the_local_stacks_file_for_a_local_report() -> None:
    versions = {"staging": "2026.11.0", "prod": "2026.12.0"}
    ok, detail = _details(_report(target="local"), workflow_versions=versions)["report_workflow_version"]
    assert not ok
    assert ("set workflow_version alike in stacks/local.yaml (stacks: staging: workflow_version, stacks: prod: "
            "workflow_version; a running stack reads it at its start: `goldgate down <stack> && goldgate up "
            "<stack>`)") in detail, detail
    assert "Pulumi." not in detail


def test_a_report_whose_served_workflows_are_missing_is_refused_not_a_crash() -> None:
    # evaluate never raises on a malformed report: `served` gone but `uncovered` a list is no proof of coverage.
    report = _report(passed=True, failures=[], workflows={"served": None, "uncovered": []})
    ok, detail = _details(report, recorded=_recorded(passed=True))["report_workflows_covered"]
    assert not ok
    assert "could not read the workflows staging serves" in detail, detail
