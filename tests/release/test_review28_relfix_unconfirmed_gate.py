"""A deploy the target applied and whose rollout it could not confirm (RolloutNotConfirmed: the cloud's `pulumi up`
applied it, the watch of RunPod's rollout failed) is reasoned from as what it is. On STAGING, a golden run made on a
rollout nobody saw finish does not open the gate, and the error-rate window starts when the stack took the image. On
PROD, a promotion still rolls back to the earlier release, and its record shows both steps: the candidate applied (its
rollout not confirmed), then the rollback; a rollback applied and unconfirmed is recorded so, and `--to` finishes it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from promotion_support import released
from release_support import StandInApi, standin_api
from test_promotion_evidence import A, B, Target

from goldgate.commands.release import do_deploy
from goldgate.errors import GoldgateError
from goldgate.release.deployers.base import DeployResult, Progress, RolloutNotConfirmed
from goldgate.release.gate import ErrorRate, PromotionRefused
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate, promote
from goldgate.release.rollback import RollbackFailed, rollback
from goldgate.release.verification import GoldenPaths, run_golden


class Unwatched(Target):
    """A target whose deploy of an image in `unwatched` applies it (the stack takes and serves it) and then fails to
    confirm the rollout, as the cloud deployer does when the watch of RunPod's rollout fails after `pulumi up`."""

    def __init__(self, api: StandInApi, pins: dict[str, str] | None = None) -> None:
        super().__init__(api, {} if pins is None else pins)
        self.unwatched: set[tuple[str, str]] = set()   # (stack, image)
        self.since: list[str] = []

    def deploy(self, stack: str, image: str, progress: Progress) -> DeployResult:
        done = super().deploy(stack, image, progress)
        if (stack, image) in self.unwatched:
            raise RolloutNotConfirmed(f"pulumi up applied {image} to {stack}, but its rollout could not be watched",
                                      DeployResult(stack, self.target, done.before, image, {"confirmed": False}))
        return done

    def error_rate(self, stack: str, since: datetime) -> ErrorRate:
        self.since.append(since.isoformat())
        return super().error_rate(stack, since)


def _failed(decision: object) -> list[str]:
    return [c.name for c in decision.conditions if not c.passed]  # type: ignore[attr-defined]


def test_a_golden_run_on_an_unconfirmed_rollout_does_not_open_the_gate(tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    latest = paths.reports_dir / "latest.json"
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Unwatched(api, {"staging": A})
        target.unwatched.add(("staging", B))
        with pytest.raises(GoldgateError, match=r"\(ledger #1 records staging on it, its rollout not confirmed\)"):
            do_deploy(target, ledger, "staging", B, "user")
        unconfirmed = ledger.entries()[-1]
        assert (unconfirmed.get("after"), unconfirmed.get("rollout_confirmed")) == (B, False)
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        decision = check_gate(target, ledger, latest)[0]
        assert _failed(decision) == ["staging_rollout"]
        with pytest.raises(PromotionRefused, match=rf"staging_rollout: .*deploy of {B} \(ledger #1\), whose rollout "
                                                   r"was not confirmed.*deploy .* again"):
            promote(target, ledger, home, paths=paths)
        assert "prod" not in target.pins

        target.unwatched.clear()
        do_deploy(target, ledger, "staging", B, "user")   # the rollout watched this time
        assert _failed(check_gate(target, ledger, latest)[0]) == ["staging_rollout"]   # the run came before it
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        target.since.clear()
        assert promote(target, ledger, home, paths=paths).ok
    # STAGING has served B since the deploy whose rollout was not confirmed: its error rate counts from there.
    assert target.since and set(target.since) == {datetime.fromisoformat(unconfirmed.ts).isoformat()}


def test_a_promotion_applied_and_unconfirmed_on_prod_rolls_back_and_records_both_steps(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with released(tmp_path, paths, A, staging_passed=B, make=Unwatched) as r:
        home, ledger, target = r.home, r.ledger, r.target
        target.unwatched.add(("prod", B))
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.outcome == "deploy_failed" and not outcome.unchanged
    assert outcome.rollback is not None and outcome.rollback.ok and outcome.rollback.before == B
    assert target.pins["prod"] == A and outcome.prod_image == A
    assert outcome.message().startswith(f"PROD rollout not confirmed for {B}: pulumi up applied {B} to prod")
    assert f"rolled back automatically to {A}" in outcome.message()
    assert outcome.to_dict()["applied"] == B and outcome.to_dict()["rollout_confirmed"] is False
    [promoted] = [e for e in ledger.entries() if e.kind == "promotion" and e.get("phase") == "outcome"
                  and e.get("image") == B]
    # Step one: PROD took B (its rollout not confirmed); step two: the rollback off it, to A.
    assert (promoted.get("applied"), promoted.get("rollout_confirmed"), promoted.get("after")) == (B, False, A)
    assert (promoted.get("rollback")["before"], promoted.get("rollback")["image"]) == (B, A)
    back = ledger.entries()[-2]
    assert (back.kind, back.get("phase"), back.get("before"), back.get("after"), back.get("outcome")) == (
        "rollback", "outcome", B, A, "rolled_back")


def test_a_promotion_whose_automatic_rollback_is_unconfirmed_too_says_how_to_finish_it(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with released(tmp_path, paths, A, staging_passed=B, make=Unwatched) as r:
        home, ledger, target = r.home, r.ledger, r.target
        target.unwatched.update({("prod", B), ("prod", A)})   # RunPod's rollouts cannot be watched at all
        outcome = promote(target, ledger, home, paths=paths)
        assert outcome.rollback is not None and outcome.rollback.rollout_confirmed is False
        message = outcome.message()
        assert f"the automatic rollback to {A} was applied, its rollout not confirmed either" in message
        assert message.endswith(f"PROD is pinned to {A}: once RunPod's rollout can be watched again, `goldgate "
                                f"rollback --to {A}` finishes the rollback"), message
        assert "PROD's own" not in message and "--retry-rejected" not in message   # nothing was judged
        [promoted] = [e for e in ledger.entries() if e.kind == "promotion" and e.get("phase") == "outcome"
                      and e.get("image") == B]
        assert promoted.get("rollout_confirmed") is False and promoted.get("rollback")["rollout_confirmed"] is False
        target.unwatched.clear()
        assert rollback(target, ledger, home, to=A, paths=paths).ok
    assert target.pins["prod"] == A


def test_a_rollback_applied_and_unconfirmed_is_recorded_so_and_finished_with_to(tmp_path: Path,
                                                                               paths: GoldenPaths) -> None:
    with released(tmp_path, paths, A, B, make=Unwatched) as r:
        home, ledger, target = r.home, r.ledger, r.target
        target.unwatched.add(("prod", A))
        with pytest.raises(RollbackFailed, match=rf"prod is pinned to {A} .*`goldgate rollback --to {A}`"):
            rollback(target, ledger, home, paths=paths)
        failed = ledger.entries()[-1]
        assert (failed.get("outcome"), failed.get("applied"), failed.get("rollout_confirmed")) == (
            "deploy_failed", A, False)
        target.unwatched.clear()
        assert rollback(target, ledger, home, to=A, paths=paths).ok   # the stack "runs" it: not refused
    assert target.pins["prod"] == A
