"""A rollback after a PROD change whose CI runner was lost during `pulumi up`: the change's deploy may have gone
through while main, whose pin commit never came, still pins what PROD ran before it. A rollback without `--to`
finishes what the lost change set out to leave running: a lost rollback goes on to its target (the operator's or
the automatic one's), a lost promotion is undone by redeploying the release it started from; re-running the
rollback after it was lost too goes to the same release. Stacks are the in-process target over the stand-in job
API; the lost runner is an exception no handler catches."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import _released
from test_promotion_partial_failure import A, B, C, Recorded, _broken_on, _staging_passes

from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths


class RunnerLost(BaseException):
    """The CI runner goes away mid-step: nothing after it runs, not even `except Exception` handlers."""


class LostDuringProdDeploy(Recorded):
    """PROD's deploy of `lose[0]` goes through, then the runner is lost (its pin commit never reaches main)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.lose: list[str] = []

    def deploy(self, stack, image, progress):  # type: ignore[no-untyped-def]
        result = super().deploy(stack, image, progress)
        if stack == "prod" and self.lose and image == self.lose[0]:
            self.lose.pop(0)
            raise RunnerLost()
        return result


def _a_then_b_promoted(target: Recorded, ledger: Ledger, home: Path, paths: GoldenPaths) -> None:
    _released(target, ledger, home, paths, A, B)


def test_rerunning_an_operators_rollback_lost_with_its_runner_takes_prod_off_the_bad_release(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # The operator rolls PROD back off B (B is bad); the runner is lost during `pulumi up` of A, so main still
    # pins B. Re-running the same rollback goes on to A; it must not redeploy B, the release the operator was
    # taking PROD off, and record that as a successful rollback.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = LostDuringProdDeploy(api, {})
        _a_then_b_promoted(target, ledger, home, paths)
        target.lose = [A]
        with pytest.raises(RunnerLost):
            rollback(target, ledger, home, paths=paths)
        target.pins["prod"] = B            # the re-run checks out main, whose pin commit never came
        target.deploys.clear()
        outcome = rollback(target, ledger, home, paths=paths)
    assert (outcome.ok, outcome.image, target.deploys) == (True, A, [f"prod={A}"])
    assert api.image_tag == A


def test_a_rollback_after_an_automatic_rollback_lost_with_its_runner_finishes_it(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # C's smoke fails on PROD; the automatic rollback to B is lost during `pulumi up` of B, so main still pins B
    # and PROD may run C. The operator's rollback redeploys B, the automatic rollback's target, not A, two
    # releases back.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = LostDuringProdDeploy(api, {})
        _a_then_b_promoted(target, ledger, home, paths)
        _staging_passes(target, ledger, paths, C)
        _broken_on(api, C)
        target.lose = [B]
        with pytest.raises(RunnerLost):
            promote(target, ledger, home, paths=paths)
        target.pins["prod"] = B
        target.deploys.clear()
        outcome = rollback(target, ledger, home, paths=paths)
    assert (outcome.ok, outcome.image, target.deploys) == (True, B, [f"prod={B}"])
    assert api.image_tag == B


@pytest.mark.parametrize(("lost", "aim", "prod_deploys"), [
    ("promotion", B, [C, B, B]),                  # C lost; the rollback to B lost; its re-run
    ("automatic rollback", B, [C, B, B, B]),      # C failed its smoke; the rollbacks to B lost, lost; the re-run
    ("operator's rollback", A, [A, A, A]),        # off B: lost, its re-run lost, the next re-run
])
def test_a_rollback_lost_again_after_a_lost_change_is_rerun_to_the_same_release(
        tmp_path: Path, paths: GoldenPaths, lost: str, aim: str, prod_deploys: list[str]) -> None:
    # The rollback after the lost change loses its runner too (in `pulumi up` of `aim`); its re-run must go to
    # `aim` again, not take the lost rollback's target as "what PROD runs" and go one release further back.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = LostDuringProdDeploy(api, {})
        _a_then_b_promoted(target, ledger, home, paths)
        target.deploys.clear()
        if lost == "operator's rollback":
            target.lose = [A, A]
            with pytest.raises(RunnerLost):
                rollback(target, ledger, home, paths=paths)
        else:
            _staging_passes(target, ledger, paths, C)
            if lost == "automatic rollback":
                _broken_on(api, C)
            target.lose = [C if lost == "promotion" else B, aim]
            with pytest.raises(RunnerLost):
                promote(target, ledger, home, paths=paths)
        target.pins["prod"] = B            # each re-run checks out main, whose pin commit never came
        with pytest.raises(RunnerLost):
            rollback(target, ledger, home, paths=paths)
        target.pins["prod"] = B
        outcome = rollback(target, ledger, home, paths=paths)
    assert (outcome.ok, outcome.image) == (True, aim)
    assert [d for d in target.deploys if d.startswith("prod=")] == [f"prod={image}" for image in prod_deploys]
    assert api.image_tag == aim            # PROD serves it, smoke-tested
