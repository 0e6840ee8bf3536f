"""A workflow the stack serves that no golden case runs (review 26). A workflow author added `sd15-txt2img` to
images/worker/workflows/ with no golden case and ran `goldgate release`: the golden run passed (its cases never sent
the new workflow a job), the gate opened, PROD's smoke passed, and PROD's first job of it failed. A full golden run
now reads the workflows the stack serves (GET /api/workflows) and fails naming each one no case runs, and the gate
refuses its report (report_passed, report_workflows_covered) saying to add a case, not to rebuild the image."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, invoke, standin_api
from test_gate_and_lock import Stacks, failed
from test_review13_a2_release_summary import UpTarget, _release

import goldgate.commands.release as release_commands
from goldgate.release.cases import GOLDEN_DIR, load_cases
from goldgate.release.gate import PromotionRefused
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64
NEW = "sd15-txt2img"   # served by the stack; the suite's cases run wf-a and wf-b only
UNCOVERED = (f"workflow {NEW}: staging serves it and no golden case runs it (a new workflow would reach PROD "
             'untested): add a case for it ("To add a case" in scripts/golden-tests/README.md)')


def test_a_release_whose_image_serves_a_workflow_no_case_runs_stops_before_prod(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path,
        paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A, workflows=["wf-a", "wf-b", NEW])) as api:
        target = UpTarget(api, {})
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        code, out, err = _release(capsys, home, paths)
    assert code == 1, out + err
    assert "prod" not in target.pins and not any(d.startswith("prod=") for d in target.deploys)
    golden = next(e for e in reversed(Ledger(home).entries()) if e.kind == "golden")
    assert golden.get("passed") is False and golden.get("failures") == [UNCOVERED]
    assert f"failure {UNCOVERED}" in out, out


def test_the_gate_refuses_the_report_and_says_to_add_a_case_not_to_rebuild(
        tmp_path: Path, paths: GoldenPaths) -> None:
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A, workflows=["wf-a", "wf-b", NEW])) as api:
        stacks = Stacks(api.url, {"staging": A})
        run = run_golden(stacks, "staging", ledger, paths=paths, poll_s=0.01)
        assert all(case["passed"] for case in run.report["cases"])   # every case passed: the suite is short
        assert not run.passed and run.report["workflows"] == {"served": sorted(["wf-a", "wf-b", NEW]),
                                                              "uncovered": [NEW]}
        decision = check_gate(stacks, ledger, run.path, cases_dir=paths.cases_dir,
                              references_dir=paths.references_dir)[0]
    assert {"report_passed", "report_workflows_covered"} <= set(failed(decision))
    message = str(PromotionRefused(decision))
    assert (f"report_workflows_covered: staging serves 1 workflow no golden case ran ({NEW}), which would reach "
            'PROD untested: add a case for each ("To add a case" in scripts/golden-tests/README.md) with its reference, '
            "commit them, then run `goldgate golden staging`") in message, message
    # report_passed tells the same: the image is not at fault, so no new build.
    assert (f"the image is not at fault: add a case for {NEW} (report_workflows_covered), then run `goldgate golden "
            "staging` on the same image") in message, message
    assert "deploy the fixed build" not in message


def test_a_suite_with_a_case_of_every_served_workflow_passes_and_says_so(
        tmp_path: Path, paths: GoldenPaths) -> None:
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A, workflows=["wf-a", "wf-b"])) as api:
        stacks = Stacks(api.url, {"staging": A})
        run = run_golden(stacks, "staging", ledger, paths=paths, poll_s=0.01)
        decision = check_gate(stacks, ledger, run.path, cases_dir=paths.cases_dir,
                              references_dir=paths.references_dir)[0]
    assert run.passed and run.report["workflows"]["uncovered"] == []
    covered = next(c for c in decision.conditions if c.name == "report_workflows_covered")
    assert decision.passed and covered.detail == "a golden case ran each of the 2 workflows staging serves"


def test_a_smoke_run_and_a_reference_update_are_not_failed_for_the_workflows_they_leave_out(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # PROD's smoke runs a few cases by design; a run making a new case's reference runs that case alone.
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A, workflows=["wf-a", "wf-b", NEW])) as api:
        stacks = Stacks(api.url, {"staging": A, "prod": A})
        assert run_golden(stacks, "prod", ledger, suite="smoke", paths=paths, poll_s=0.01).passed
        rewrite = run_golden(stacks, "staging", ledger, paths=paths, update_references=True, poll_s=0.01)
    assert rewrite.passed and rewrite.report["workflows"]["uncovered"] == [NEW]


def test_the_shipped_suite_runs_a_case_of_every_shipped_workflow() -> None:
    shipped = {p.stem for p in (GOLDEN_DIR.parents[1] / "images" / "worker" / "workflows").glob("*.json")}
    assert shipped and shipped <= {case.workflow for case in load_cases(GOLDEN_DIR / "cases")}


def test_golden_prints_each_uncovered_workflow(capsys: pytest.CaptureFixture, tmp_path: Path,
                                               paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    with standin_api(StandInApi(image_tag=A, workflows=["wf-a", "wf-b", NEW])) as api:
        stacks = Stacks(api.url, {"staging": A})
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: stacks)
        code, out, _err = invoke(capsys, "golden", "staging", "--home", str(tmp_path / "home"), "--cases-dir",
                                 str(paths.cases_dir), "--references-dir", str(paths.references_dir),
                                 "--reports-dir", str(paths.reports_dir))
    assert code == 1 and UNCOVERED in out, out
