"""PROD's verdict on a digest stands when the command that reached it did not finish. A promotion whose smoke cases
failed on PROD, or an operator's rollback that took PROD off a digest, keeps a re-run of that digest's promotion off
PROD (the gate's `prod_verdict`) even when the runner was lost before the command recorded its outcome: the failed
smoke run is in the ledger on its own, and the rollback's intent says it was the operator's. Stacks are the
in-process target over the stand-in job API; the lost runner is an exception no handler catches."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import _released
from test_promotion_partial_failure import A, B, _broken_on, _staging_passes
from test_rollback_after_lost_runner import LostDuringProdDeploy, RunnerLost

from goldgate.release.gate import PromotionRefused
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths


def _rollback_lost_past_its_pin(api: StandInApi, ledger: Ledger, home: Path, paths: GoldenPaths
                                ) -> LostDuringProdDeploy:
    """A and B promoted; the operator's rollback off B is lost after PROD was pinned to A, before its outcome."""
    target = LostDuringProdDeploy(api, {})
    _released(target, ledger, home, paths, A, B)
    target.lose = [A]
    with pytest.raises(RunnerLost):
        rollback(target, ledger, home, paths=paths)
    return target


def test_a_rerun_promotion_whose_smoke_failed_before_its_runner_was_lost_does_not_put_the_digest_back(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # B's smoke cases fail on PROD; the runner is lost during the automatic rollback's `pulumi up` of A, before the
    # promotion's outcome is recorded. "Re-run failed jobs" checks out the same commit (PROD pinned to A, as main
    # still has it) with B's report still fresh: before, the gate passed and PROD took B, failing its smoke again.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = LostDuringProdDeploy(api, {})
        _staging_passes(target, ledger, paths, A)
        assert promote(target, ledger, home, paths=paths).ok
        _staging_passes(target, ledger, paths, B)
        _broken_on(api, B)
        target.lose = [A]
        with pytest.raises(RunnerLost):
            promote(target, ledger, home, paths=paths)
        target.pins["prod"] = A
        target.deploys.clear()
        with pytest.raises(PromotionRefused, match=rf"prod_verdict: {B} went to prod and its "
                                                   rf"smoke cases failed there \(ledger #\d+\)"):
            promote(target, ledger, home, paths=paths)
        assert target.deploys == []
        outcome = rollback(target, ledger, home, paths=paths)   # what the operator does instead: finish the rollback
    assert (outcome.ok, outcome.image, target.deploys) == (True, A, [f"prod={A}"])


def test_a_promotion_after_an_operators_rollback_interrupted_past_its_pin_does_not_put_the_digest_back(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # The operator rolls PROD back off B; the command dies after PROD was pinned to A, before the outcome. Promoting
    # B again from its still-fresh report must be refused as after a finished rollback: before, the outcome that
    # `reconcile` recorded had no reason, so the operator's verdict was lost and PROD took B back.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = _rollback_lost_past_its_pin(api, ledger, home, paths)
        assert target.pins["prod"] == A
        target.deploys.clear()
        with pytest.raises(PromotionRefused, match=r"prod_verdict: .* an operator's rollback took prod off it"):
            promote(target, ledger, home, paths=paths)
        assert target.deploys == [] and target.pins["prod"] == A
    closed = [e for e in ledger.entries() if e.get("outcome") == "interrupted"]
    assert [(e.kind, e.get("reason")) for e in closed] == [("rollback", "manual")]   # `goldgate history --json` says so


def test_a_promotion_lost_before_its_smoke_ran_can_be_rerun(tmp_path: Path, paths: GoldenPaths) -> None:
    # Lost during PROD's `pulumi up` of B: PROD never judged B, so the re-run promotes it.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = LostDuringProdDeploy(api, {})
        _staging_passes(target, ledger, paths, A)
        assert promote(target, ledger, home, paths=paths).ok
        _staging_passes(target, ledger, paths, B)
        target.lose = [B]
        with pytest.raises(RunnerLost):
            promote(target, ledger, home, paths=paths)
        target.pins["prod"] = A
        assert promote(target, ledger, home, paths=paths).ok
    assert target.pins["prod"] == B


def test_an_interrupted_rollback_closed_by_an_older_goldgate_still_keeps_the_digest_off_prod(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # A ledger restored from the branch may hold an `interrupted` outcome that an older goldgate's reconcile wrote
    # without the reason: the rollback's intent still says it was the operator's.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = _rollback_lost_past_its_pin(api, ledger, home, paths)
        intent = ledger.entries()[-1]
        assert (intent.kind, intent.get("phase"), intent.get("reason")) == ("rollback", "intent", "manual")
        ledger.append("rollback", phase="outcome", intent_seq=intent.seq, stack="prod", image=A, before=B, after=A,
                      pinned=A, prod_image=None, outcome="interrupted", trigger="goldgate reconcile")
        target.deploys.clear()
        with pytest.raises(PromotionRefused, match=r"prod_verdict: .* an operator's rollback took prod off it"):
            promote(target, ledger, home, paths=paths)
    assert target.deploys == [] and target.pins["prod"] == A
