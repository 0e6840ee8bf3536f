"""`goldgate promote --image`: the caller names the digest it approved (CI: the one its build printed), and the gate
refuses a STAGING report or a STAGING pin for any other. Without --image, promote gates as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_cli_errors import one_error_line
from test_gate_and_lock import NOW, RECORDED, THR, failed, report
from test_promotion_evidence import Target

from goldgate.cli import main
from goldgate.release.gate import ErrorRate, PromotionRefused, evaluate
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


def _gate(rep: dict, staging: str | None, expected: str | None):
    recorded = {**RECORDED, "image": rep["image"]}   # the golden run that wrote this report
    return evaluate(rep, staging, THR, ErrorRate(40, 0, "t"), now=NOW, recorded=recorded, expected_image=expected)


def test_the_gate_passes_when_the_report_and_staging_are_for_the_approved_digest() -> None:
    decision = _gate(report(), A, A)
    assert decision.passed and decision.image == A
    assert "expected_image" in [c.name for c in decision.conditions]


@pytest.mark.parametrize(("rep", "staging"), [(report(image=B), B), (report(), B), (report(image=B), A)],
                         ids=["report-and-staging-for-another", "staging-runs-another", "report-for-another"])
def test_the_gate_refuses_a_report_or_staging_pin_for_another_digest_than_the_approved_one(
        rep: dict, staging: str) -> None:
    # Before (CI): an inline step compared the report with the build; a local `promote` had no way to say which
    # digest its approval was for, and promoted whatever STAGING had qualified last.
    decision = _gate(rep, staging, A)
    assert not decision.passed and "expected_image" in failed(decision)
    message = str(PromotionRefused(decision))
    assert f"expected_image: promoting only {A}: the report is for {rep['image']} and STAGING runs {staging}" in message
    assert "run `goldgate golden staging`" in message


def test_without_an_approved_digest_the_gate_is_as_before() -> None:
    decision = _gate(report(image=B), B, None)
    assert decision.passed and "expected_image" not in [c.name for c in decision.conditions]


def _invoke(capsys: pytest.CaptureFixture, home: Path, *argv: str) -> tuple[int, str]:
    try:
        code = main([*argv, "--home", str(home)])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


@pytest.mark.parametrize("image", ["local/worker:latest", "sha256:" + "a" * 64, "local/worker@sha256:abc",
                                   "local/worker@sha256:" + "A" * 64, ""],
                         ids=["a-tag", "no-repo", "short-digest", "uppercase-hex", "empty"])
def test_promote_refuses_an_image_not_pinned_by_digest_before_anything_is_read(
        capsys: pytest.CaptureFixture, tmp_path: Path, image: str) -> None:
    code, err = _invoke(capsys, tmp_path, "promote", "--image", image)
    assert code == 2
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(errors) == 1 and f"argument --image: {image!r} is not pinned by digest" in errors[0], err
    assert not (tmp_path / "ledger.jsonl").exists()


def test_promote_with_an_image_and_no_report_names_the_reports_dir_given(capsys: pytest.CaptureFixture,
                                                                tmp_path: Path) -> None:
    code, err = _invoke(capsys, tmp_path, "promote", "--image", A, "--reports-dir", str(tmp_path / "reports"))
    assert code == 1 and f"directory {tmp_path / 'reports'} does not exist (check the path given)" \
        in one_error_line(err)


def test_a_promotion_approved_for_one_digest_never_promotes_the_one_staging_took_since(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # Run 1 built and approved A; run 2 deployed B to STAGING and qualified it before run 1's promote job started.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        for image in (A, B):
            target.deploy("staging", image, lambda _m: None)
            assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        with pytest.raises(PromotionRefused, match=rf"expected_image: promoting only {A}: the report is for {B}"):
            promote(target, ledger, home, paths=paths, expected_image=A)
        assert "prod" not in target.pins
        refused = [e for e in ledger.entries() if e.kind == "promotion"]
        assert [e.get("phase") for e in refused] == ["refused"]
        assert "expected_image" in json.dumps(refused[0].get("gate"))
        assert promote(target, ledger, home, paths=paths, expected_image=B).ok
    assert target.pins["prod"] == B
