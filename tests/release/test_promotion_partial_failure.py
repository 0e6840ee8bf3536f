"""The promotion pipeline under CI semantics: a re-run of an earlier CI run checks out that run's commit, so its
stack files pin what STAGING and PROD ran back then while the ledger (restored from its branch) knows what
happened since. Acting on such a checkout would undo a later release; goldgate refuses it before anything is
recorded or deployed. Stacks are the in-process target over the stand-in job API."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, render_png, standin_api
from test_gate_and_lock import failed
from test_promotion_evidence import Target, _released

from goldgate.commands.release import do_deploy
from goldgate.errors import GoldgateError
from goldgate.release.gate import PromotionRefused
from goldgate.release.history import last_verified
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate, promote
from goldgate.release.rollback import StalePin, rollback
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
C = "local/worker@sha256:" + "c" * 64
D = "local/worker@sha256:" + "d" * 64


class Recorded(Target):
    """Counts every deploy, so a test can say PROD was never touched."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.deploys: list[str] = []

    def deploy(self, stack, image, progress):  # type: ignore[no-untyped-def]
        self.deploys.append(f"{stack}={image}")
        return super().deploy(stack, image, progress)


def _staging_passes(target: Target, ledger: Ledger, paths: GoldenPaths, image: str) -> Path:
    do_deploy(target, ledger, "staging", image, "test")
    run = run_golden(target, "staging", ledger, paths=paths, poll_s=0.01)
    assert run.passed
    return run.path


def _history(target: Recorded, ledger: Ledger, home: Path, paths: GoldenPaths) -> None:
    """A and B promoted, B rolled back to A (that rollback run checked out a commit pinning B), then C promoted."""
    _released(target, ledger, home, paths, A, B)
    assert rollback(target, ledger, home, to=A, paths=paths).ok
    _staging_passes(target, ledger, paths, C)
    assert promote(target, ledger, home, paths=paths).ok
    target.deploys.clear()


def test_a_rerun_rollback_from_a_checkout_older_than_prods_last_promotion_is_refused(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # Re-running the earlier rollback run (`--to A`) would take PROD off C, released since, back to A.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _history(target, ledger, home, paths)
        entries = len(ledger.entries())
        target.pins["prod"] = B            # the stack file as that run's commit has it
        with pytest.raises(StalePin, match=f"prod is pinned to {B} in this checkout, but its last promotion "
                                           rf"\(ledger #\d+\) left it on {C}: .*start a new run from the newest main"):
            rollback(target, ledger, home, to=A, paths=paths)
        with pytest.raises(StalePin):
            rollback(target, ledger, home, paths=paths)
    assert target.deploys == [] and len(ledger.entries()) == entries


def test_a_rerun_promotion_from_a_checkout_older_than_prods_last_change_is_refused(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _history(target, ledger, home, paths)
        _staging_passes(target, ledger, paths, D)
        target.deploys.clear()
        entries = len(ledger.entries())
        target.pins["prod"] = A
        with pytest.raises(StalePin, match=f"prod is pinned to {A} in this checkout"):
            promote(target, ledger, home, paths=paths)
    assert target.deploys == [] and len(ledger.entries()) == entries


def test_a_pin_the_ledger_never_saw_does_not_wedge_the_next_promotion(tmp_path: Path, paths: GoldenPaths) -> None:
    # A change whose ledger push was lost leaves the stack file ahead of the ledger: not a stale checkout.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _history(target, ledger, home, paths)
        target.pins["prod"] = "local/worker@sha256:" + "e" * 64
        _staging_passes(target, ledger, paths, D)
        assert promote(target, ledger, home, paths=paths).ok
    assert target.pins["prod"] == D


def test_a_rerun_promotion_whose_staging_pin_is_older_than_stagings_last_deploy_is_refused(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # The promote job of an earlier run restores its own STAGING pin and report (D, passed, still fresh) while
    # STAGING has since been deployed with C: the gate must not take D as what STAGING runs.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _staging_passes(target, ledger, paths, A)
        assert promote(target, ledger, home, paths=paths).ok
        old_report = _staging_passes(target, ledger, paths, D)
        _staging_passes(target, ledger, paths, C)
        target.deploys.clear()
        target.pins["staging"] = D
        assert {"staging_image", "report_digest"} <= set(failed(check_gate(target, ledger, old_report)[0]))
        with pytest.raises(PromotionRefused, match=f"staging_image: this checkout pins {D} on staging, but its "
                                                   rf"last deploy \(ledger #\d+\) put {C} there"):
            promote(target, ledger, home, report_path=old_report, paths=paths)
    assert target.deploys == [] and target.pins["prod"] == A


def test_a_staging_pin_the_ledger_never_saw_is_taken_as_what_staging_runs(tmp_path: Path,
                                                                         paths: GoldenPaths) -> None:
    # A deploy that failed after pinning records no deploy entry; the golden run then vouches for that pin.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _staging_passes(target, ledger, paths, A)
        target.deploy("staging", D, lambda _m: None)
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        assert promote(target, ledger, home, paths=paths).ok
    assert target.pins["prod"] == D


def _broken_on(api: StandInApi, image: str) -> None:
    """From now on jobs that run on `image` render the wrong picture (its smoke cases fail); others are fine."""
    def renders(workflow: str, inputs: dict) -> list[bytes]:
        seed = "broken" if api.image_tag == image else f"{workflow}:{inputs.get('prompt')}:{inputs.get('seed')}"
        return [render_png(f"{seed}:{i}", int(inputs.get("width", 64)), int(inputs.get("height", 64)))
                for i in range(int(inputs.get("batch_size", 1)))]
    api.renders = renders


def _smoke_fails_on_prod_from_now_on(api: StandInApi, target: Recorded, ledger: Ledger, home: Path,
                                     paths: GoldenPaths) -> None:
    """PROD on A (promoted), STAGING on B (its golden run passed); from now on B renders the wrong picture, so
    the next promotion's smoke cases fail on PROD."""
    _staging_passes(target, ledger, paths, A)
    assert promote(target, ledger, home, paths=paths).ok
    _staging_passes(target, ledger, paths, B)
    _broken_on(api, B)


def test_re_running_a_promotion_whose_smoke_failed_on_prod_does_not_put_the_digest_back(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # "Re-run failed jobs" on the promote job: the STAGING report is still fresh and STAGING still runs B, so
    # before, the gate passed again and PROD took the digest its smoke cases had just failed on.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _smoke_fails_on_prod_from_now_on(api, target, ledger, home, paths)
        first = promote(target, ledger, home, paths=paths)
        assert first.outcome == "smoke_failed" and first.prod_image == A
        target.deploys.clear()
        with pytest.raises(PromotionRefused, match=rf"prod_verdict: {B} went to prod and its "
                                                   rf"smoke cases failed there \(ledger #\d+\)"):
            promote(target, ledger, home, paths=paths)
        assert target.deploys == [] and target.pins["prod"] == A
        api.renders = None                            # fixed; the operator says so explicitly
        _staging_passes(target, ledger, paths, B)
        assert promote(target, ledger, home, paths=paths, retry_rejected=True).ok
    assert target.pins["prod"] == B


def test_re_running_a_promotion_an_operator_rolled_back_does_not_put_the_digest_back(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _released(target, ledger, home, paths, A, B)
        assert rollback(target, ledger, home, paths=paths).ok     # B misbehaved in production
        target.deploys.clear()
        with pytest.raises(PromotionRefused, match=r"prod_verdict: .* an operator's rollback took prod off it"):
            promote(target, ledger, home, paths=paths)
    assert target.deploys == [] and target.pins["prod"] == A


def test_re_running_a_promotion_whose_deploy_failed_promotes(tmp_path: Path, paths: GoldenPaths) -> None:
    # A deploy that failed says nothing about the image (a flaky backend): the retry must stay possible.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _staging_passes(target, ledger, paths, A)
        assert promote(target, ledger, home, paths=paths).ok
        _staging_passes(target, ledger, paths, B)
        target.crash.add(B)
        assert promote(target, ledger, home, paths=paths).outcome == "deploy_failed"
        target.crash.clear()
        assert promote(target, ledger, home, paths=paths).ok
    assert target.pins["prod"] == B


def test_a_rollback_whose_deploy_failed_after_the_pin_can_be_retried(tmp_path: Path, paths: GoldenPaths) -> None:
    # The pin moved to A before the rollout failed, so PROD "runs" A without having taken it; before, retrying
    # `rollback --to A` was refused as "prod already runs A", leaving the operator no way to finish the rollback.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _released(target, ledger, home, paths, A, B)
        target.crash.add(A)
        with pytest.raises(GoldgateError, match=f"rollback of prod to {A} deploy failed: .*prod is pinned to {A}") as failed:
            rollback(target, ledger, home, to=A, paths=paths)
        # The way on, named: a plain `rollback` would now look past A (PROD's pin) for a release before it.
        assert f"finish it with `goldgate rollback --to {A}`" in str(failed.value)
        target.crash.clear()
        assert rollback(target, ledger, home, to=A, paths=paths).ok
        with pytest.raises(GoldgateError, match=f"prod already runs {A}; nothing to roll back"):
            rollback(target, ledger, home, to=A, paths=paths)   # done now: a third time is refused again
    assert target.pins["prod"] == A and last_verified(ledger.entries()).image == A


def test_a_promotion_whose_automatic_rollback_failed_too_tells_the_operator_to_roll_back_further(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # Before: "...; rolled back automatically to A (deploy failed); PROD is pinned to A", which reads as done.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _smoke_fails_on_prod_from_now_on(api, target, ledger, home, paths)
        target.crash.add(A)
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.outcome == "smoke_failed" and outcome.rollback is not None and not outcome.rollback.ok
    message = outcome.message()
    assert f"the automatic rollback to {A} failed too (deploy failed: ProcessLookupError" in message
    # Before: "roll back further with `goldgate rollback --to <release>`", where there was no earlier release, and
    # the fault that failed A's smoke too is PROD's own (docs/RUNBOOK.md, "A failed promotion").
    assert message.endswith(f"PROD is pinned to {A}: the fault is most likely PROD's own: fix it (the smoke errors, "
                            f"`goldgate status prod`), then `goldgate rollback --to {A}` and "
                            "`goldgate promote --retry-rejected`")
    # The smoke report the runbook says to read is named, and is there.
    assert outcome.smoke_report and f"for {B} (smoke report {outcome.smoke_report}): " in message
    assert Path(outcome.smoke_report).is_file()
    assert "\n" not in message


def test_a_first_promotion_that_failed_says_there_is_nothing_to_return_to_and_what_to_do(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _staging_passes(target, ledger, paths, B)
        target.crash.add(B)
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.outcome == "deploy_failed" and outcome.rollback is None
    assert outcome.message().endswith(f"no earlier verified release to roll back to; PROD is pinned to {B}: fix the "
                                      "cause and promote a fixed build")
    # The ledger says what PROD is pinned to, and that nothing was verified there.
    last = ledger.entries()[-1]
    assert (last.get("outcome"), last.get("pinned"), last.get("prod_image")) == ("deploy_failed", B, None)


class RunnerLost(BaseException):
    """The CI runner goes away mid-step: nothing after it runs, not even `except Exception` handlers."""


class LostDuringProdDeploy(Recorded):
    """PROD's deploy of `lose` goes through, then the runner is lost (its pin commit never reaches main)."""

    lose: str | None = None

    def deploy(self, stack, image, progress):  # type: ignore[no-untyped-def]
        result = super().deploy(stack, image, progress)
        if stack == "prod" and image == self.lose:
            raise RunnerLost()
        return result


@pytest.mark.parametrize("to", [None, B], ids=["previous", "named"])
def test_after_a_promotion_lost_with_its_runner_a_rollback_returns_prod_to_the_pin_it_left(
        tmp_path: Path, paths: GoldenPaths, to: str | None) -> None:
    # A runner lost during `pulumi up` of C: PROD may run C, unverified, while main's stack file (the next job's
    # checkout) still pins B. Before, the operator's rollback went to A, two releases back, or (`--to B`) refused:
    # "prod already runs B; nothing to roll back".
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = LostDuringProdDeploy(api, {})
        _released(target, ledger, home, paths, A, B)
        _staging_passes(target, ledger, paths, C)
        target.lose = C
        with pytest.raises(RunnerLost):
            promote(target, ledger, home, paths=paths)
        target.pins["prod"] = B            # the next job checks out main, whose pin commit never came
        target.deploys.clear()
        outcome = rollback(target, ledger, home, to=to, paths=paths)
    assert outcome.ok and outcome.image == B and target.deploys == [f"prod={B}"]
    assert api.image_tag == B              # PROD serves B again, smoke-tested
