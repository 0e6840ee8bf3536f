"""Review 19 (rel): PROD's verdict on a digest, from rules the session-19 mutation audit left without a test.

An operator's rollback that was interrupted is their verdict on the release it was leaving, whatever pin `reconcile`
read; a rollback whose aim was the release PROD was already pinned to (a failed rollback retried) left nothing, so it
is no verdict against that release: promoting it again later needs no `--retry-rejected`."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import A, B, C, Target, _released, _staging_passes

from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import RollbackFailed, rollback
from goldgate.release.verification import GoldenPaths


class RunnerLost(BaseException):
    """The CI runner gone mid-command: nothing of goldgate's handles it, as nothing runs after a SIGKILL."""


def _lost_after_intent(message: str) -> None:
    if message.startswith("rolling prod back to"):   # said right after the rollback's intent is recorded
        raise RunnerLost(message)


def test_a_retried_rollback_to_the_pinned_release_lost_with_its_runner_is_no_verdict_against_that_release(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home, key=None)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A, B)
        target.crash = {A}                     # the rollout of A fails after PROD's pin moved to it
        with pytest.raises(RollbackFailed):
            rollback(target, ledger, home, to=A, paths=paths)
        assert target.pins["prod"] == A
        target.crash = set()
        with pytest.raises(RunnerLost):        # the operator retries it; that runner is lost before PROD changes
            rollback(target, ledger, home, to=A, paths=paths, progress=_lost_after_intent)
        _released(target, ledger, home, paths, C)   # the next promotion closes the lost rollback, then ships C
        # A was verified on PROD, and no operator took PROD off it: qualified again on STAGING, it may go back.
        _staging_passes(target, ledger, paths, A)
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.ok, outcome.message()
    assert target.pins["prod"] == A


def _lost_before_smoke(message: str) -> None:
    if message.startswith("smoke suite on prod"):   # PROD is pinned to the candidate; its smoke run starts
        raise RunnerLost(message)


def test_a_first_release_whose_smoke_fails_is_not_rolled_back_onto_itself(tmp_path: Path, paths: GoldenPaths) -> None:
    # PROD's pin names the candidate before the promotion starts (the first promotion of it was lost after its
    # deploy): with no verified release, there is nothing to roll back to; redeploying the failing image and
    # smoking it again is no rollback, and said "the automatic rollback to <it> failed too".
    home = tmp_path / "home"
    ledger = Ledger(home, key=None)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _staging_passes(target, ledger, paths, A)
        with pytest.raises(RunnerLost):
            promote(target, ledger, home, paths=paths, progress=_lost_before_smoke)
        assert target.pins["prod"] == A
        api.fail_workflows.add("wf-a")          # the smoke case fails on PROD
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.outcome == "smoke_failed"
    assert outcome.rollback is None
    assert "no earlier verified release to roll back to" in outcome.message()
    assert not [e for e in ledger.entries() if e.kind == "rollback"]
