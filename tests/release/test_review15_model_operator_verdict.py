"""Review 15 (model): findings of the release path's model-based test (test_review15_model_release_path.py), each
minimised to an example."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import _released
from test_promotion_partial_failure import A, B, C, _broken_on, _staging_passes
from test_rollback_after_lost_runner import LostDuringProdDeploy, RunnerLost

from goldgate.release.gate import PromotionRefused
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths


def _operators_rollback_lost_in_ci(api: StandInApi, target: LostDuringProdDeploy, ledger: Ledger, home: Path,
                                   paths: GoldenPaths) -> None:
    """A and B promoted; the operator's rollback off B loses its CI runner after `pulumi up` moved PROD to A, before
    the outcome and the pin commit: PROD serves A, and main's stack file still pins B."""
    _released(target, ledger, home, paths, A, B)
    target.lose = [A]
    with pytest.raises(RunnerLost):
        rollback(target, ledger, home, paths=paths)
    assert api.image_tag == A          # PROD serves A
    target.pins["prod"] = B            # main's stack file: the pin commit never came


def test_an_operators_rollback_lost_in_ci_keeps_the_digest_off_prod_though_mains_pin_still_names_it(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # A and B promoted; the operator rolls PROD back off B and the CI runner is lost after `pulumi up` moved PROD to
    # A, before the outcome and the pin commit. The next job checks out main, which still pins B, and re-runs B's
    # promotion (its report is fresh, STAGING runs B): before, reconcile recorded the rollback as leaving PROD on B
    # (the pin it read), the operator's verdict on B was lost, and PROD took B back without --retry-rejected.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = LostDuringProdDeploy(api, {})
        _operators_rollback_lost_in_ci(api, target, ledger, home, paths)
        target.deploys.clear()
        with pytest.raises(PromotionRefused, match=r"prod_verdict: .* an operator's rollback took prod off it"):
            promote(target, ledger, home, paths=paths)
        assert target.deploys == [] and api.image_tag == A
        assert promote(target, ledger, home, paths=paths, retry_rejected=True).ok   # the operator's word
    assert target.pins["prod"] == B


def test_after_an_operators_rollback_lost_in_ci_a_failed_promotion_does_not_roll_back_onto_the_release_it_left(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # As above; then C's promotion fails its smoke on PROD. Before, the automatic rollback took the newest verified
    # release, B, for one no rollback had left (reconcile read main's pin, B, as where the lost rollback left PROD),
    # and put PROD back on the release the operator had taken it off.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = LostDuringProdDeploy(api, {})
        _operators_rollback_lost_in_ci(api, target, ledger, home, paths)
        _staging_passes(target, ledger, paths, C)
        _broken_on(api, C)
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.outcome == "smoke_failed" and outcome.rollback is not None
    assert (outcome.rollback.image, outcome.rollback.ok, target.pins["prod"]) == (A, True, A)
