"""The newest run for a digest is its evidence: a smoke run on STAGING (`goldgate golden staging --smoke`) that failed
after the full run passed is a later failure of the same digest on the same stack. Before, the gate looked at later
full runs only, so `goldgate promote` put a digest on PROD right after STAGING's smoke cases had failed on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_gate_and_lock import failed
from test_promotion_evidence import Target

from goldgate.release.gate import PromotionRefused
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate, promote
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64


def test_a_staging_smoke_run_that_failed_after_the_full_pass_closes_the_gate(tmp_path: Path,
                                                                             paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    latest = paths.reports_dir / "latest.json"
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {"staging": A})
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        api.fail_workflows.add("wf-a")                 # the smoke case's workflow breaks on STAGING
        smoke = run_golden(target, "staging", ledger, suite="smoke", paths=paths, poll_s=0.01)
        assert not smoke.passed
        decision = check_gate(target, ledger, latest)[0]
        assert failed(decision) == ["report_recorded"]
        with pytest.raises(PromotionRefused, match=r"report_recorded: a later smoke run on staging for .* "
                                                   r"\(ledger #\d+\) did not pass"):
            promote(target, ledger, home, paths=paths)
        assert "prod" not in target.pins
        # Fixed (or flaky): a new full run that passes is the newest evidence and opens the gate again.
        api.fail_workflows.clear()
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        assert promote(target, ledger, home, paths=paths).ok
    assert target.pins["prod"] == A


def test_a_staging_smoke_run_that_passed_after_the_full_pass_leaves_the_gate_open(tmp_path: Path,
                                                                                 paths: GoldenPaths) -> None:
    # A smoke run covers a few cases: passing, it neither replaces nor outvotes the full run.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {"staging": A})
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        assert run_golden(target, "staging", ledger, suite="smoke", paths=paths, poll_s=0.01).passed
        assert check_gate(target, ledger, paths.reports_dir / "latest.json")[0].passed
