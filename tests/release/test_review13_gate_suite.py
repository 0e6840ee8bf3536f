"""The gate opens only for a golden run over the suite the promotion names (by default the checkout's
scripts/golden-tests/cases), each case as that suite defines it. The ledger entry of a golden run records the digest
of each case it ran; a run over a copy of the suite with a limit loosened (same case ids, same references) passed
every case id check before, and promoted a digest whose renders fail the committed suite. Stacks are the in-process
target over the stand-in job API."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from release_support import StandInApi, render_png, standin_api
from test_gate_and_lock import NOW, RECORDED, THR, failed, report
from test_promotion_partial_failure import A, B, Recorded, _staging_passes

from goldgate.commands.release import do_deploy
from goldgate.release.cases import load_cases
from goldgate.release.gate import ErrorRate, PromotionRefused, evaluate
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate, promote
from goldgate.release.verification import GoldenPaths, run_golden


def _a_little_off(workflow: str, inputs: dict) -> list[bytes]:
    """Renders unlike the references (a broken model), at the size the cases expect."""
    size = int(inputs.get("width", 64)), int(inputs.get("height", 64))
    return [render_png(f"a broken model {i}", *size) for i in range(int(inputs.get("batch_size", 1)))]


def _loosened(paths: GoldenPaths, tmp_path: Path) -> GoldenPaths:
    """A copy of the suite, every case and id kept, with limits no broken render fails."""
    loose = tmp_path / "loose-cases"
    shutil.copytree(paths.cases_dir, loose)
    for case in loose.glob("*.yaml"):
        text = case.read_text().replace(", max_hash_distance: 4}", "}")
        case.write_text(text.replace("expect: {", "expect: {max_hash_distance: 63, max_color_distance: 254, "))
    return replace(paths, cases_dir=loose)


def test_a_run_over_a_loosened_copy_of_the_suite_does_not_open_the_gate(tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _staging_passes(target, ledger, paths, A)
        assert promote(target, ledger, home, paths=paths).ok
        api.renders = _a_little_off
        do_deploy(target, ledger, "staging", B, "test")
        assert not run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        fooled = run_golden(target, "staging", ledger, paths=_loosened(paths, tmp_path), poll_s=0.01)
        assert fooled.passed, fooled.report["failures"]   # same case ids, same committed references: only the limits differ
        target.deploys.clear()
        # Before: every condition passed and PROD took B.
        with pytest.raises(PromotionRefused, match=r"report_cases: golden run #\d+ ran batch, square as other "
                                                   r"definitions than \S+/golden/cases holds \(a case edited since "
                                                   r"the run, or a run from another --cases-dir\)"):
            promote(target, ledger, home, paths=paths)
        assert failed(check_gate(target, ledger, fooled.path, cases_dir=paths.cases_dir,
                                 references_dir=paths.references_dir)[0]) == ["report_cases"]
    assert target.deploys == [] and target.pins["prod"] == A


def test_a_run_over_the_suite_the_promotion_names_opens_the_gate_and_says_so(tmp_path: Path,
                                                                             paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _staging_passes(target, ledger, paths, A)
        # A description or a smoke flag edited since the run changes nothing the run proved.
        square = paths.cases_dir / "square.yaml"
        square.write_text(square.read_text().replace("smoke: true\n", "smoke: true\ndescription: the square one\n"))
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.ok and target.pins["prod"] == A
    (detail,) = [c.detail for c in outcome.gate.conditions if c.name == "report_cases"]
    assert detail.endswith(f"ran all 2 cases of {paths.cases_dir}")


def test_a_golden_run_recorded_without_its_cases_is_refused_by_name(tmp_path: Path, paths: GoldenPaths) -> None:
    # What an older goldgate recorded: the gate cannot tell which suite the run went through, so it does not open;
    # one `goldgate golden staging` (the report must be fresh anyway) records a run it can tell.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _staging_passes(target, ledger, paths, A)
        run = ledger.entries()[-1]
        ledger.append("golden", **{k: v for k, v in run.fields.items() if k not in ("suite_cases", "cases_dir")})
        with pytest.raises(PromotionRefused, match=r"report_cases: golden run #3 did not record which cases it ran "
                                                   r"\(an older goldgate recorded it\)"):
            promote(target, ledger, home, paths=paths)
        _staging_passes(target, ledger, paths, A)
        assert promote(target, ledger, home, paths=paths).ok


def test_the_gate_compares_each_case_of_the_named_suite_with_what_the_run_recorded(paths: GoldenPaths) -> None:
    from goldgate.release.cases import suite_digests  # new here: the other tests run on a goldgate without it

    suite = suite_digests(load_cases(paths.cases_dir))
    ran = {**RECORDED, "suite_cases": {**suite, "retired": "0" * 64}}   # a case removed since: no matter

    def decide(recorded: dict) -> list[str]:
        return failed(evaluate(report(), A, THR, ErrorRate(40, 1, "t"), now=NOW, recorded=recorded,
                               definitions=suite, suite_dir="scripts/golden-tests/cases"))
    assert decide(ran) == []
    assert decide({**RECORDED, "suite_cases": {"square": suite["square"]}}) == ["report_cases"]
    assert decide({**RECORDED, "suite_cases": {**suite, "batch": "f" * 64}}) == ["report_cases"]
    for odd in (None, "square", ["square", "batch"]):   # a forged or older entry: refused, never a crash
        assert decide({**RECORDED, "suite_cases": odd}) == ["report_cases"]
    d = evaluate(report(), A, THR, ErrorRate(40, 1, "t"), now=NOW, recorded={**RECORDED, "suite_cases": {
        "square": suite["square"]}}, definitions=suite, suite_dir="scripts/golden-tests/cases")
    assert ("report_cases: golden run #7 ran 1 of the 2 cases of scripts/golden-tests/cases (missing: batch)"
            in str(PromotionRefused(d)))
