"""A checkout whose golden reports cannot be written (read-only, another user's): `promote` and `rollback`
refuse before PROD changes, and a golden run before any case runs. Found out only after the smoke cases
passed, writing the smoke report failed, the promotion was recorded `smoke_failed` (the ledger's verdict
against a good image) and PROD was rolled back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import Target

from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.report import ReportError
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


def _blocked(tmp_path: Path) -> Path:
    """A reports dir no process can write, root included: a file stands where its parent would be."""
    (tmp_path / "readonly-checkout").write_text("a file where the checkout's scripts/ would be\n")
    return tmp_path / "readonly-checkout" / "reports"


def test_promote_with_unwritable_reports_refuses_before_prod_changes(tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {"staging": A})
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        before = len(ledger.entries())
        jobs_before = len(api.jobs)
        blocked = replace(paths, reports_dir=_blocked(tmp_path))
        with pytest.raises(ReportError, match="golden reports cannot be written: .*no golden case was run"):
            promote(target, ledger, home, paths=blocked, report_path=paths.reports_dir / "latest.json")
        assert "prod" not in target.pins                        # PROD untouched
        assert [e.kind for e in ledger.entries()[before:]] == []  # no intent, no smoke_failed verdict
        assert len(api.jobs) == jobs_before                      # no smoke job ran
        # From a writable checkout the same promotion goes through.
        assert promote(target, ledger, home, paths=paths).ok
    assert target.pins["prod"] == A


def test_rollback_and_golden_with_unwritable_reports_refuse_before_anything_runs(tmp_path: Path,
                                                                                 paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {"staging": A})
        for image in (A, B):
            target.deploy("staging", image, lambda _m: None)
            assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
            assert promote(target, ledger, home, paths=paths).ok
        assert target.pins["prod"] == B
        before = len(ledger.entries())
        blocked = replace(paths, reports_dir=_blocked(tmp_path))
        with pytest.raises(ReportError, match="no golden case was run"):
            rollback(target, ledger, home, paths=blocked)
        assert target.pins["prod"] == B
        with pytest.raises(ReportError, match="no golden case was run"):
            run_golden(target, "staging", ledger, paths=blocked, poll_s=0.01)
        assert len(ledger.entries()) == before
        assert rollback(target, ledger, home, paths=paths).ok
    assert target.pins["prod"] == A
