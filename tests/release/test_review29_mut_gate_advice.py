"""Review 29 (mut): the gate's advice that mutants of session 28's gate.py changed with no test failing. A failed
error_rate names the target of the report in each command it gives (a cloud operator's `goldgate deploy` without
`--target cloud` acts on the local target) and the image STAGING runs; a single reference git does not hold as
committed is "it", not "each"."""

from __future__ import annotations

from test_review26_fixb_failed_golden_advice import NOW, THR, A, _report

from goldgate.release.gate import ErrorRate, evaluate


def _error_rate(report: dict, staging_image: str | None = A) -> tuple[bool, str]:
    decision = evaluate(report, staging_image, THR, ErrorRate(10, 3, "2026-11-28T10:00:00Z"), now=NOW)
    return next((c.passed, c.detail) for c in decision.conditions if c.name == "error_rate")


def test_a_failed_error_rate_on_the_cloud_target_gives_commands_for_the_cloud_target() -> None:
    ok, detail = _error_rate(_report(target="cloud"))
    assert not ok
    assert "`goldgate metrics staging --target cloud`" in detail, detail
    assert f"`goldgate deploy staging --target cloud --image {A}`" in detail, detail
    assert "`goldgate golden staging --target cloud`" in detail, detail


def test_a_failed_error_rate_on_the_local_target_names_the_image_staging_runs_and_no_target() -> None:
    ok, detail = _error_rate(_report(target="local"))
    assert not ok
    assert f"`goldgate deploy staging --image {A}`" in detail, detail
    assert "--target" not in detail, detail


def test_a_passing_error_rate_gives_no_advice() -> None:
    decision = evaluate(_report(target="cloud"), A, THR, ErrorRate(100, 5, "t"), now=NOW)
    ok, detail = next((c.passed, c.detail) for c in decision.conditions if c.name == "error_rate")
    assert ok and detail == "5 of 100 STAGING jobs failed since t (5.0%, max 5.0%)", detail


def _references_detail(states: dict[str, str]) -> tuple[bool, str]:
    shas = {"a.png": "1" * 64, "b.png": "2" * 64}
    report = _report(references={"sha256": shas})
    decision = evaluate(report, A, THR, ErrorRate(10, 0, "t"), now=NOW, references=shas,
                        references_dir="scripts/golden-tests/references/local",
                        references_git=lambda _where, _names: states)
    return next((c.passed, c.detail) for c in decision.conditions if c.name == "report_references_match")


def test_one_reference_git_does_not_hold_is_named_as_it_and_two_as_each() -> None:
    ok, detail = _references_detail({"a.png": "untracked"})
    assert not ok
    assert "git does not hold 1 of the 2 as committed: a.png (untracked); look at it, commit" in detail, detail
    ok, detail = _references_detail({"a.png": "untracked", "b.png": "modified"})
    assert not ok and "a.png (untracked), b.png (modified); look at each, commit" in detail, detail
    ok, detail = _references_detail({})
    assert ok and detail == "the report compared with the 2 committed reference images", detail


def test_a_golden_run_after_an_unconfirmed_deploy_names_the_run_and_the_deploy_by_their_ledger_numbers() -> None:
    recorded = {"kind": "golden", "seq": 7, "stack": "staging", "image": A, "suite": "full", "passed": True}
    deploy = {"kind": "deploy", "seq": 5, "stack": "staging", "after": A, "rollout_confirmed": False}
    for given, said in ((recorded, "the golden run (ledger #7) followed"), (None, "the golden run followed")):
        decision = evaluate(_report(passed=True, failures=[]), A, THR, ErrorRate(10, 0, "t"), now=NOW,
                            recorded=given, unconfirmed_deploy=deploy)
        ok, detail = next((c.passed, c.detail) for c in decision.conditions if c.name == "staging_rollout")
        assert not ok
        assert detail.startswith(f"{said} staging's deploy of {A} (ledger #5), whose rollout was not confirmed"), detail
        assert f"deploy {A} to staging again (its rollout watched), then run `goldgate golden staging`" in detail
