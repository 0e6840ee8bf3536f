"""A golden report opens the gate only if its run went through every golden case: a run over a few of them (`goldgate
golden staging --cases-dir <one case>`, while debugging it) writes latest.json as a full run does, but it is not the
golden tests the digest has to pass. Stacks are the in-process target over the stand-in job API."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from release_support import StandInApi, standin_api, write_case
from test_gate_and_lock import NOW, RECORDED, THR, failed, report
from test_promotion_partial_failure import A, B, Recorded, _staging_passes

from goldgate.release.gate import ErrorRate, PromotionRefused, evaluate
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate, promote
from goldgate.release.verification import GoldenPaths, run_golden


def _one_case(paths: GoldenPaths, tmp_path: Path) -> GoldenPaths:
    """The suite's smoke case alone, in a directory of its own (the other case is left out)."""
    one = tmp_path / "one-case"
    one.mkdir()
    shutil.copy(paths.cases_dir / "square.yaml", one)
    return GoldenPaths(cases_dir=one, references_dir=paths.references_dir, reports_dir=paths.reports_dir)


def test_a_golden_run_over_part_of_the_suite_does_not_open_the_gate(tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    # A stack serving wf-a alone: the run over its one case is covered, and passes; only the gate's suite check is left.
    with standin_api(StandInApi(image_tag=A, workflows=["wf-a"])) as api:
        target = Recorded(api, {})
        _staging_passes(target, ledger, paths, A)
        assert promote(target, ledger, home, paths=paths).ok
        target.deploy("staging", B, lambda _m: None)
        partial = run_golden(target, "staging", ledger, paths=_one_case(paths, tmp_path), poll_s=0.01)
        assert partial.passed and partial.path.with_name("latest.json").read_bytes() == partial.path.read_bytes()
        target.deploys.clear()
        with pytest.raises(PromotionRefused, match=r"report_cases: golden run #\d+ ran 1 of the 2 cases of "
                                                   r"\S+/golden/cases \(missing: batch\)"):
            promote(target, ledger, home, paths=paths)
        assert target.deploys == [] and target.pins["prod"] == A
        assert failed(check_gate(target, ledger, partial.path, cases_dir=paths.cases_dir)[0]) == ["report_cases"]
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed   # the whole suite
        assert promote(target, ledger, home, paths=paths).ok
    assert target.pins["prod"] == B


def test_a_case_added_to_the_suite_after_the_run_must_be_run_too(tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _staging_passes(target, ledger, paths, A)
        write_case(paths.cases_dir, "wide", "workflow: wf-a\ninputs: {prompt: p3, seed: 3, width: 96, height: 32}\n"
                                            "expect: {images: 1}\n")
        with pytest.raises(PromotionRefused, match=r"report_cases: golden run #\d+ ran 2 of the 3 cases of "
                                                   r"\S+/golden/cases \(missing: wide\)"):
            promote(target, ledger, home, paths=paths)
    assert "prod" not in target.pins


@pytest.mark.parametrize("cases", [None, "square", {"id": "square"}, [["square"]], [{"id": ["square"]}],
                                   [{"id": {"a": 1}}, {"id": "batch"}]])
def test_a_report_whose_cases_are_of_the_wrong_shape_is_refused_not_a_crash(cases: object) -> None:
    d = evaluate(report(cases=cases), A, THR, ErrorRate(40, 1, "t"), now=NOW, recorded=RECORDED,
                 suite=["batch", "square"])
    assert failed(d) == ["report_cases"]


def test_a_report_that_ran_every_case_passes_the_suite_condition() -> None:
    d = evaluate(report(cases=[{"id": "square"}, {"id": "batch"}, {"id": "retired"}]), A, THR, ErrorRate(40, 1, "t"),
                 now=NOW, recorded=RECORDED, suite=["batch", "square"])
    assert d.passed
