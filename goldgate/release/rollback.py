"""Rollback: pin an earlier verified release on PROD, deploy it, smoke-test it.

`rollback()` is the operator's command (takes the release lock); `rollback_locked()` is the same
sequence for a caller that already holds it (the automatic rollback after a failed promotion).
Every PROD change writes its intent to the ledger before touching PROD and its outcome after, so a
crash part-way leaves a record of both candidates for what PROD runs; `reconcile()` closes such an
intent with what PROD is observed to run.

When the stack's last change was interrupted, a rollback without `--to` finishes what that change set out to
leave running: an interrupted rollback goes on to the release it was rolling back to, an interrupted promotion is
undone by redeploying the release it started from. (A CI runner lost during `pulumi up` never pushes its pin
commit, so the stack may run the change's image while main still pins the one before; the pin says nothing.)
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError, describe
from goldgate.release.cases import load_cases
from goldgate.release.deployers.base import Deployer, Progress, RolloutNotConfirmed
from goldgate.release.gate import Commands, commands_for
from goldgate.release.history import (
    VERIFIED_OUTCOMES,
    Interrupted,
    UnknownRelease,
    VerifiedRelease,
    change_cut_short,
    interrupted,
    last_verified,
    on_target,
    pin_accounted_for,
    release_ids,
    resolve,
    stale_pin,
    untrusted_verifications,
    unverified_on_prod,
    verified_releases,
)
from goldgate.release.interrupt import how, sigterm_interrupts
from goldgate.release.ledger import Entry, Ledger, golden_run_named, judged_image
from goldgate.release.lock import ReleaseLock
from goldgate.release.report import check_reports_dir
from goldgate.release.spend_limit import check_within_spend_limit
from goldgate.release.verification import (
    DEFAULT_PATHS,
    GoldenPaths,
    NothingRun,
    check_runs_as_declared,
    run_golden,
)


class RollbackFailed(GoldgateError):
    """The rollback deploy or its smoke test failed; PROD's pin is recorded in the ledger."""


class StalePin(GoldgateError):
    """The stack file pins what the stack ran before its last recorded change: acting on it would undo that."""


@dataclass(frozen=True)
class RollbackOutcome:
    outcome: str                  # rolled_back | smoke_failed | smoke_not_run | deploy_failed
    stack: str
    image: str
    release_id: str | None
    before: str | None
    prod_image: str | None
    smoke_report: str | None
    smoke_passed: bool
    reason: str
    error: str | None = None
    served: str | None = None     # what the stack's host served before it, where the target can say (local)
    rollout_confirmed: bool | None = None   # False: the stack took `image`, but its rollout was not confirmed
    # `before` was pinned outside goldgate (pin.json edited by hand: no promotion or rollback in the ledger moved the
    # pin there) under a host that served `served`; not by an interrupted change
    pinned_outside_goldgate: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome == "rolled_back"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def rollback(deployer: Deployer, ledger: Ledger, home: Path, *, to: str | None = None, stack: str = "prod",
             trigger: str = "user", progress: Progress = lambda _m: None,
             paths: GoldenPaths = DEFAULT_PATHS) -> RollbackOutcome:
    """Operator rollback to `to` (digest, ref or release id), or to the previous verified release."""
    if to is not None and not to.strip():
        # An unset variable in `--to "$RELEASE"` must not quietly become "the previous release".
        raise UnknownRelease("--to is empty: name a digest, image ref or release id, or leave --to out for the "
                             "previous verified release")
    # The commands the advice names, on this rollback's target (without --target they act on the local stacks).
    run = commands_for(deployer.target, cases_dir=paths.cases_dir, references_dir=paths.references_dir,
                       reports_dir=paths.reports_dir)
    told = telling_what_an_interrupt_left(deployer, ledger, stack, progress, run)   # Ctrl-C or SIGTERM: what it left
    again = run.rollback("" if to is None else f" --to {shlex.quote(to.strip())}")
    with ReleaseLock(home, f"rollback {stack}", again=again), told:
        ledger.require_key_if_signed(f"roll {stack} back")
        # A stack whose smoke run would refuse to run (its stacks file edited since it started): refused before the
        # ledger or the stack changes, with the command that applies the file.
        check_runs_as_declared(deployer, stack, f"cannot roll {stack} back")
        check_pin_current(deployer, ledger, stack)
        reconcile(deployer, ledger, stack, progress, run)
        entries = on_target(ledger.entries(), deployer.target)
        current = deployer.current_image(stack)
        # What the stack's host serves, where the target can say (local): a pin moved under it (pin.json edited by
        # hand) names a release it does not run, and a rollback to either one is a change.
        served = served_image(deployer, stack)
        by_hand = served is not None and current is not None and served != current \
            and not pin_accounted_for(_last_change(entries, stack), current)
        lost = _lost_change(entries, stack)
        target = _rollback_target(entries, stack, to, current, lost, progress, run)
        _check_something_to_roll_back(entries, stack, target.image, current, served, lost)
        check_before_change(deployer, stack, paths, progress, doing=f"roll {stack} back", change="this rollback",
                            at_limit=f"this rollback's smoke run could not run: it would leave {stack} on "
                                     f"{target.image} unverified")
        outcome = rollback_locked(deployer, ledger, target.image, stack=stack, trigger=trigger,
                                  reason=_rollback_reason(entries, stack, current, target.image, lost),
                                  progress=progress, paths=paths)
        if by_hand:
            outcome = replace(outcome, pinned_outside_goldgate=True)
    if not outcome.ok:
        raise RollbackFailed(f"rollback of {stack} to {outcome.image} {outcome.outcome.replace('_', ' ')}"
                             f"{': ' + outcome.error if outcome.error else ''}; {stack} is pinned to "
                             f"{outcome.prod_image or 'no image goldgate could read'} (recorded in the ledger); once the cause is fixed, finish it with "
                             f"`{run.rollback(' --to ' + outcome.image)}`, or name another verified release with --to "
                             f"(see `{run.history()}`)")
    return outcome


def _rollback_target(entries: list[Entry], stack: str, to: str | None, current: str | None, lost: Entry | None,
                     progress: Progress, run: Commands) -> VerifiedRelease:
    """The release to roll `stack` back to: the one named with --to; else the one an interrupted change set out to
    leave running; else the last verified release before `current`. Raises when none can be named."""
    aim = next((r for r in verified_releases(entries, stack) if r.image == _aim(lost)), None) if lost else None
    if to is not None:
        return resolve(entries, to, stack, current, on=run.on)
    if lost is not None and aim is not None:
        progress(f"{stack}'s last {lost.kind} (ledger #{lost.get('intent_seq')}) was interrupted; finishing it: "
                 f"{aim.image} is what it set out to leave running")
        return aim
    if current is None and verified_releases(entries, stack):
        # Unreadable, not empty: "the release before this one" would be the newest verified one, which is
        # most likely what the stack still runs; redeploying it is no rollback.
        # No pin at all says the same (a local PROD whose pin was removed, as advised for one no worker runs).
        newest = verified_releases(entries, stack)[-1]
        raise GoldgateError(f"cannot tell what {stack} runs now (no pin, or one that cannot be read); name the "
                            f"release to roll back to with --to, e.g. the newest verified one: "
                            f"`{run.rollback(' --to ' + (newest.release_id or newest.image))}` (see "
                            f"`{run.history()}`)")
    found = last_verified(entries, exclude=current, stack=stack)
    if found is None:
        raise UnknownRelease(_no_target(entries, stack, current, run))
    return found


def _check_something_to_roll_back(entries: list[Entry], stack: str, image: str, current: str | None,
                                  served: str | None, lost: Entry | None) -> None:
    """Refuse a rollback to the release `stack` runs now, unless running it again is itself the remedy."""
    # The release it runs again: only when the attempt that put it there failed, or was cut short, or its last
    # smoke run there failed (a fault of PROD's own, once fixed: `status` offers this rollback then), or its host
    # serves another (pinned by hand: `status`'s pin line offers this rollback then).
    if image == current and served in (None, current) and not _attempt_failed(entries, stack, current) \
            and lost is None and _smoke_failed(entries, stack, current) is None:
        raise GoldgateError(f"{stack} already runs {current}; nothing to roll back (name another release "
                            "with --to)")


def _rollback_reason(entries: list[Entry], stack: str, current: str | None, image: str, lost: Entry | None) -> str:
    """The reason the ledger records for an operator's rollback to `image`: whether it is a verdict on the release
    it leaves."""
    # Taking the stack off a candidate no smoke run judged (or finishing a rollback cut short that was doing so)
    # is no verdict on it: recorded so, the gate's prod_verdict does not read it as the operator's.
    candidate = unjudged_candidate(entries, stack)
    finishing = lost is not None and lost.kind == "rollback" and lost.get("reason") == UNJUDGED \
        and image == _aim(lost)
    off_unjudged = candidate is not None and candidate.get("image") != image
    return UNJUDGED if off_unjudged or finishing else \
        NEVER_JUDGED if _never_judged(entries, stack, current, image) else "manual"


def check_before_change(deployer: Deployer, stack: str, paths: GoldenPaths, progress: Progress, *, doing: str,
                        change: str, at_limit: str) -> None:
    """What would fail only after `stack` changed, refused before it does: smoke cases that cannot run (or would ask
    for more time than the stack allows), a smoke report that cannot be written, a local stack that is not up, a
    stack at its daily spend limit (`at_limit`: what that would cost the change; nothing recorded, as for the
    others). Warns when the stack's host runs older goldgate code (`change`: "this promotion", "this rollback")."""
    load_cases(paths.cases_dir, smoke_only=True,
               stack_latency_s=deployer.spec(stack).thresholds.golden_case_latency_s)
    # Found unwritable after the smoke passed, the stack would be rolled back.
    check_reports_dir(paths.reports_dir)
    # A local stack that is not up would fail the deploy, recorded and logged as a failed change (which alerts).
    check_stack_up(deployer, stack, doing)
    # Its smoke run's creates would be refused 429 spend_limit_reached until 00:00 UTC: the change would end with the
    # stack on a release no smoke run judged (`smoke_not_run`), and a promotion would roll it back for nothing.
    check_within_spend_limit(deployer, stack, progress, doing=doing, because=at_limit)
    note = host_code_note(deployer, stack, change)
    if note is not None:
        progress(f"warning: {note}")


def _no_target(entries: list[Entry], stack: str, current: str | None, run: Commands) -> str:
    """Why there is no previous release, naming the one `goldgate history` lists as verified if there is one."""
    from goldgate.release.promote import shipped_placeholder  # promote imports this module

    runs = current or "nothing yet"
    if current and shipped_placeholder(current):   # as `promote` says it: no release ever ran there
        runs = "nothing yet: it pins the shipped placeholder, before its first release"
    earlier = [r for r in verified_releases(entries, stack) if r.image != current]
    untrusted = [e for e in untrusted_verifications(entries, stack) if e.get("prod_image") != current]
    if not earlier and untrusted:   # a ledger key is in use, and the releases before it are not vouched for by it
        return (f"no earlier verified release to roll back to ({stack} runs {runs}): "
                f"{untrusted[-1].mac_problem()}, and only releases verified under the ledger key are rollback "
                f"targets; see `{run.history()}`")
    if not earlier:
        return f"no earlier verified release to roll back to ({stack} runs {runs}); see `{run.history()}`"
    newest = earlier[-1]
    return (f"no verified release to roll back to ({stack} runs {runs}): a rollback took {stack} off each of "
            f"the others since it was verified; the newest, {newest.release_id + ' ' if newest.release_id else ''}"
            f"{newest.image}, can be pinned on purpose with "
            f"`{run.rollback(' --to ' + (newest.release_id or newest.image))}`")


def _never_judged(entries: list[Entry], stack: str, current: str | None, target: str) -> bool:
    """Is `current`, which `stack` pins and a rollback to `target` takes it off, a release nothing judged there: never
    verified there, and no golden run (a smoke run as a rule) of it there either?"""
    if current is None or current == target or any(r.image == current for r in verified_releases(entries, stack)):
        return False
    return not any(e.kind == "golden" and e.get("stack") == stack and e.get("image") == current for e in entries)


def _last_change(entries: list[Entry], stack: str) -> dict[str, Any] | None:
    """The last promotion or rollback line of `stack` (an intent or an outcome), as `last_prod_change` finds it: under
    a ledger key, an authenticated one."""
    last = next((e for e in reversed(entries) if e.kind in ("promotion", "rollback") and e.authentic
                 and e.get("stack", "prod") == stack and e.get("phase") in ("intent", "outcome")), None)
    return None if last is None else last.to_dict()


def _attempt_failed(entries: list[Entry], stack: str, image: str) -> bool:
    """Did the last promotion or rollback that put `image` on `stack` fail (deploy, smoke, interrupted)? Its pin
    stays, so the stack "runs" it without having taken it; retrying that rollback must not be refused."""
    attempt = next((e for e in reversed(entries) if e.kind in ("promotion", "rollback") and e.get("phase") == "outcome"
                    and e.get("stack", "prod") == stack and e.get("image") == image), None)
    return attempt is not None and attempt.get("outcome") not in VERIFIED_OUTCOMES


def _lost_change(entries: list[Entry], stack: str) -> Entry | None:
    """The outcome `reconcile` recorded for the last change of `stack`, if that change was interrupted: the stack
    may run its image or the one before, whatever the pin says, so a redeploy is never "nothing to roll back". Under a
    ledger key only an authenticated outcome says so: a line appended without it would pick the rollback's target."""
    last = next((e for e in reversed(entries) if e.kind in ("promotion", "rollback") and e.get("phase") == "outcome"
                 and e.get("stack", "prod") == stack and e.authentic), None)
    return last if last is not None and last.get("outcome") == "interrupted" else None


def _aim(change: Entry) -> str | None:
    """What an interrupted change set out to leave running: a rollback's target (the operator's or the automatic
    one's); for a promotion, the release it started from (its candidate was never verified there)."""
    return change.get("image") if change.kind == "rollback" else change.get("before")


def rollback_locked(deployer: Deployer, ledger: Ledger, image: str, *, stack: str, trigger: str, reason: str,
                    progress: Progress, paths: GoldenPaths) -> RollbackOutcome:
    before = deployer.current_image(stack)
    served = served_image(deployer, stack)   # what ran: an interrupted deploy may have moved the pin only
    rid = release_ids(ledger.entries()).get(image)
    intent = ledger.append("rollback", phase="intent", stack=stack, target=deployer.target, image=image,
                           release_id=rid, before=before, served=served, reason=reason, trigger=trigger)
    progress(f"rolling {stack} back to {image} ({reason})")
    deployed: dict[str, Any] = {}
    outcome, error, smoke_path, smoke_passed = deploy_and_smoke(deployer, ledger, stack, image, "rolled_back",
                                                                trigger=trigger, progress=progress, paths=paths,
                                                                deployed=deployed)
    prod_image = observed_pin(deployer, stack)
    # The verified release is the image the smoke cases passed on, as a promotion records it; `pinned` is what the
    # stack pins now, which a writer outside the lock may have changed since the smoke run.
    ledger.append("rollback", phase="outcome", intent_seq=intent.seq, stack=stack, target=deployer.target,
                  image=image, release_id=rid, before=before, served=served, after=prod_image,
                  prod_image=image if outcome == "rolled_back" else None, pinned=prod_image, outcome=outcome,
                  smoke_report=smoke_path, smoke_passed=smoke_passed, error=error, trigger=trigger, reason=reason,
                  **deployed)
    unconfirmed = ", its rollout not confirmed" if deployed else ""
    progress(f"rollback of {stack}: {outcome} ({stack} pinned to {prod_image}{unconfirmed})")
    return RollbackOutcome(outcome=outcome, stack=stack, image=image, release_id=rid, before=before,
                           prod_image=prod_image, smoke_report=smoke_path, smoke_passed=smoke_passed,
                           reason=reason, error=error, served=served,
                           rollout_confirmed=False if deployed else None)


def deploy_and_smoke(deployer: Deployer, ledger: Ledger, stack: str, image: str, success: str, *, trigger: str,
                     progress: Progress, paths: GoldenPaths,
                     deployed: dict[str, Any] | None = None) -> tuple[str, str | None, str | None, bool]:
    """Pin `image` on `stack`, check the stack took it, smoke-test it. Returns (outcome, error, smoke report,
    smoke passed); outcome is `success`, `deploy_failed`, `smoke_failed` or `smoke_not_run` (the smoke run refused
    to start for a reason that is not the image's: no verdict on it). Any failure is an outcome, not an
    exception: the caller has an intent in the ledger to close and perhaps a rollback to run. A rollback's smoke run
    (`success` rolled_back) runs only the smoke cases whose workflow the release it went back to serves.
    A deploy the target applied but whose rollout it could not confirm (RolloutNotConfirmed) is `deploy_failed` too,
    and fills `deployed` with `applied` (the image the stack took) and `rollout_confirmed` False, for the caller's
    outcome line: the stack serves, or is rolling to, that image."""
    try:
        deployer.deploy(stack, image, progress)
        pinned = deployer.current_image(stack)
        if pinned != image:  # the smoke cases would vouch for whatever the stack still runs
            raise GoldgateError(f"after the deploy {stack} runs {pinned}, not {image}")
    except RolloutNotConfirmed as exc:
        if deployed is not None:
            deployed.update(applied=exc.result.after, rollout_confirmed=False)
        return "deploy_failed", describe(exc), None, False
    except Exception as exc:  # noqa: BLE001 -- whatever broke, the stack's pin must be recorded and restored
        return "deploy_failed", describe(exc), None, False
    try:
        run = run_golden(deployer, stack, ledger, suite="smoke", paths=paths, trigger=trigger, progress=progress,
                         served_only=success == "rolled_back")
    except NothingRun as exc:   # no case ran: not a verdict on the image, and not verified either
        return "smoke_not_run", describe(exc), None, False
    except Exception as exc:  # noqa: BLE001
        return "smoke_failed", describe(exc), None, False
    if not run.passed:
        return "smoke_failed", "; ".join(run.report["failures"][:3]), str(run.path), False
    if run.report.get("image") != image:  # another writer re-pinned the stack after the check above
        error = f"the smoke run was on {run.report.get('image')}, not {image}: it vouches for what {stack} ran"
        return "smoke_failed", error, str(run.path), False
    return success, None, str(run.path), True


def check_stack_up(deployer: Deployer, stack: str, doing: str) -> None:
    """A local stack that is not up: refused before the ledger records a change or the stack is touched (its deploy
    would fail, be recorded as a failed promotion or rollback, and be logged as one, which alerts)."""
    platform = getattr(deployer, "platform", None)
    status = getattr(platform, "status", None)
    if deployer.target != "local" or status is None or status(stack).running:
        return
    raise GoldgateError(f"cannot {doing}, nothing was changed or recorded: {platform.not_up(stack)}, then run "
                        "this again")


def host_code_note(deployer: Deployer, stack: str, doing: str) -> str | None:
    """A line saying that `stack`'s running host runs older goldgate code than this checkout (as `up` and `status`
    say it), and what `doing` (a deploy, a promotion, a rollback) changes of that; None when it runs this checkout's
    code, the stack is down, or the target cannot tell (the cloud). A warning, never a refusal or a restart: the
    deploy starts the stack's service afresh, on this checkout's code, and only the host (the stand-ins for RunPod
    and R2, which a cloud release does not ship either) keeps the old; a restart would end the jobs in flight on
    the stack, a choice left to the operator."""
    platform = getattr(deployer, "platform", None)
    code_changed = getattr(platform, "code_changed", None)
    if deployer.target != "local" or code_changed is None:
        return None
    try:
        said = code_changed(stack)
    except Exception:  # noqa: BLE001 -- only a warning: the change goes on and says its own failures
        return None
    if not said:
        return None
    # The host configures each service it starts from the settings it read when it started, not the checkout's.
    return (f"{stack}: {said}; {doing} starts {stack}'s service on this checkout's code, with the settings its host "
            "read when it started, while its host (the local RunPod and its webhooks, the result store) keeps running "
            "the old until that restart")


def check_pin_current(deployer: Deployer, ledger: Ledger, stack: str) -> None:
    """Refuse a stack file older than the stack's last recorded change, before anything is recorded: a re-run of
    an earlier CI run would otherwise roll back to, or promote over, a release that was since replaced. Call
    under the lock, before `reconcile` (which would record the stale pin as what the stack runs).
    A deployer whose pin is the stack's own record (the local one's `served_pin`: its state dir's pin.json, which no
    checkout holds an older copy of) is never stale: a pin there that the last change did not leave was set outside
    goldgate (pin.json edited by hand), and "start a new run from the newest main" left PROD wedged on it, with
    `rollback` refused too; the change goes on from what the stack pins, and `status` names it UNVERIFIED."""
    if callable(getattr(deployer, "served_pin", None)):
        return
    pinned = deployer.current_image(stack)
    last = stale_pin(on_target(ledger.entries(), deployer.target), pinned, stack)
    if last is not None:
        left = last.get("pinned", last.get("after"))
        raise StalePin(f"{stack} is pinned to {pinned} in this checkout, but its last {last.kind} (ledger "
                       f"#{last.seq}) left it on {left}: this stack file is older than that change (a re-run of an "
                       "earlier CI run?); nothing was changed: start a new run from the newest main (if main too "
                       f"pins {pinned}, that change's pin commit never reached it: pin {left} there first)")


def reconcile(deployer: Deployer, ledger: Ledger, stack: str, progress: Progress,
              commands: Commands | None = None) -> int:
    """Close intents a crashed command left open, recording what `stack` runs now. Call under the lock. `commands`:
    how its warning names the commands to run (by default, plainly on the deployer's target)."""
    closeouts = pending_closeouts(deployer, ledger, stack)
    if not closeouts:
        return 0
    for item, fields in closeouts:
        ledger.append(item.kind, **fields)
        progress(f"an earlier {item.kind} (ledger #{item.intent_seq}) was interrupted; {stack} is pinned to "
                 f"{fields['pinned']}, recorded")
    # Left on a release its smoke cases failed on (an automatic rollback cut short), or on a candidate no smoke run
    # judged (a promotion cut short): a promotion's gate may now refuse and leave the stack as it is, so the operator
    # must hear what it is left on, and what to run.
    warning = prod_state_warning(deployer, ledger, stack, commands)
    if warning is not None:
        progress(warning)
    return len(closeouts)


def pending_closeouts(deployer: Deployer, ledger: Ledger, stack: str) -> list[tuple[Interrupted, dict[str, Any]]]:
    """The outcome lines `reconcile` would write now for the changes of `stack` left open (none written here): what
    `promote --check` judges with, so that it judges as the promotion will."""
    open_intents = interrupted(on_target(ledger.entries(), deployer.target), stack)
    if not open_intents:
        return []
    pinned = observed_pin(deployer, stack)
    served = served_image(deployer, stack)
    out = []
    for item in open_intents:
        # A rollback's reason goes with its outcome: an operator's verdict on the release it was leaving stands
        # even though the command did not finish.
        reason = {"reason": item.reason} if item.kind == "rollback" and item.reason is not None else {}
        # `after` is what the stack ran when the change was closed: what its host serves where that can be read (a
        # pin moved by a deploy cut short before the host took it is not what ran), else the pin.
        out.append((item, {"phase": "outcome", "intent_seq": item.intent_seq, "stack": stack,
                           "target": deployer.target, "image": item.image, "before": item.before,
                           "after": served or pinned, "pinned": pinned, "served": served, "prod_image": None,
                           "outcome": "interrupted", "trigger": "goldgate reconcile", **reason}))
    return out


def served_image(deployer: Deployer, stack: str) -> str | None:
    """What `stack`'s host serves now, where the target can say (the local one, while the stack runs); None otherwise."""
    platform = getattr(deployer, "platform", None)
    if deployer.target != "local" or platform is None or not hasattr(platform, "status"):
        return None
    try:
        status = platform.status(stack)
    except Exception:  # noqa: BLE001 -- only a better word on what ran; the pin is recorded either way
        return None
    image = getattr(status, "image", None)
    return image if getattr(status, "running", False) and isinstance(image, str) else None


# A rollback that only takes the stack off a candidate no smoke run judged there (its promotion was interrupted
# before its smoke run finished) is the operator finishing that change, not a verdict on the candidate: the gate's
# prod_verdict reads only reason "manual" as the operator's verdict.
UNJUDGED = "manual: finishing an interrupted promotion no smoke run judged"
# Likewise one that takes it off a release nothing judged there at all (pinned by hand, or a ledger that lost its
# entries: `status` calls it UNVERIFIED): a golden run on STAGING and `promote --image` it must stay possible after it.
NEVER_JUDGED = "manual: off a release nothing judged there"


def unjudged_candidate(entries: list[Entry], stack: str) -> Entry | None:
    """The intent of the last change of `stack` when it is a promotion that was interrupted (open, or closed as
    interrupted) before any smoke run on `stack` judged its candidate: the stack may be pinned to, or serve, a release
    nothing verified there. None otherwise."""
    changes = [e for e in entries if e.kind in ("promotion", "rollback") and e.get("stack", "prod") == stack
               and e.get("phase") in ("intent", "outcome") and e.authentic]
    if not changes:
        return None
    last = changes[-1]
    if last.kind != "promotion":
        return None
    if last.get("phase") == "outcome":
        if last.get("outcome") != "interrupted":
            return None
        intent = next((e for e in changes if e.seq == last.get("intent_seq")), None)
    else:
        intent = last
    if intent is None:
        return None
    judged = any(e.kind == "golden" and e.get("stack") == stack and e.get("suite") == "smoke"
                 and e.get("image") == intent.get("image") and e.seq > intent.seq for e in entries)
    return None if judged else intent


def prod_state_warning(deployer: Deployer, ledger: Ledger, stack: str,
                       commands: Commands | None = None) -> str | None:
    """A line saying `stack` is left on a release its smoke cases failed on, or on a candidate no smoke run judged
    there, with the ways out (`commands`: how it names them; by default, plainly on the deployer's target); None when
    it is on neither."""
    run = commands or Commands(deployer.target)
    entries = on_target(ledger.entries(), deployer.target)
    pinned = observed_pin(deployer, stack)
    failed = _smoke_failed(entries, stack, pinned)
    intent = unjudged_candidate(entries, stack)
    # A rollback to it cut short after that run (the `rollback --to` it that `status` offers once the cause on the
    # stack is fixed) is the newest change: it speaks, and `goldgate rollback` goes on to finish it, not off it.
    last = _last_change(entries, stack)
    if failed is not None and last is not None and last.get("kind") == "rollback" \
            and change_cut_short(last, str(pinned), after=failed.seq):
        return (f"{stack} is pinned to {pinned}, which no smoke run judged there since its rollback to it (ledger "
                f"#{last.get('intent_seq', last.get('seq'))}) was interrupted; its {_run(failed)} there before that "
                f"rollback failed (ledger #{failed.seq}); {_finish(run)}")
    # A promotion of it cut short after that run (`promote --retry-rejected`) is the newest change: it speaks.
    if failed is not None and (intent is None or pinned != intent.get("image")):
        return (f"{stack} is pinned to {pinned}, whose {_run(failed)} failed there (ledger #{failed.seq}): "
                f"`{run.rollback()}` takes {stack} off it")
    if intent is None or pinned is None or pinned != intent.get("image"):
        # A local PROD's pin is its own record (`served_pin`): one no promotion or rollback verified there (pin.json
        # edited by hand, a ledger that lost its entries) is said as `status` says it, UNVERIFIED, with its ways out.
        if pinned is None or not callable(getattr(deployer, "served_pin", None)) \
                or any(r.image == pinned for r in verified_releases(entries, stack)):
            return None
        return unverified_on_prod(Path(ledger.path).parent, stack, pinned, "is pinned to")
    served = served_image(deployer, stack)
    serves = f" (its host still serves {served})" if served and served != pinned else ""
    return (f"{stack} is pinned to {pinned}{serves}, which no smoke run judged there: its promotion (ledger "
            f"#{intent.seq}) was interrupted{_failed_before(failed)}; {_again(intent, run)} smokes it, or "
            f"`{run.rollback()}` puts back {intent.get('before') or 'the last verified release'} (not a verdict on it)")


def _finish(run: Commands) -> str:
    """What to run after a rollback to a release cut short: `rollback` without --to goes on to the release it was
    rolling to."""
    return (f"`{run.rollback()}` finishes it (and smokes it), or `{run.rollback(' --to <release>')}` pins another "
            f"verified release (see `{run.history()}`)")


def _failed_before(failed: Entry | None) -> str:
    """"; its smoke run there before that promotion failed (ledger #n)" for the golden run `failed` (None: "")."""
    return "" if failed is None else f"; its {_run(failed)} there before that promotion failed (ledger #{failed.seq})"


def _again(intent: Entry | None, run: Commands) -> str:
    """The promote command that tries an interrupted promotion again: with --retry-rejected when it had it."""
    retry = intent is not None and intent.get("retry_rejected") is True
    return f"`{run.promote(' --retry-rejected' if retry else '')}`"


@contextmanager
def telling_what_an_interrupt_left(deployer: Deployer, ledger: Ledger, stack: str,
                                   progress: Progress, commands: Commands | None = None) -> Iterator[None]:
    """Around a promotion or rollback of `stack`: SIGTERM ends it as Ctrl-C does, and either one is followed by a
    line saying what the change left (`left_behind`) before the interrupt goes on to the caller."""
    with sigterm_interrupts():
        try:
            yield
        except KeyboardInterrupt as exc:
            with suppress(Exception):   # the interrupt is what the caller must see, whatever reading the state says
                progress(f"{how(exc)}: {left_behind(deployer, ledger, stack, commands)}")
            raise


def left_behind(deployer: Deployer, ledger: Ledger, stack: str, commands: Commands | None = None) -> str:
    """What an interrupted promotion or rollback left, in a line: the change the ledger holds open, what `stack`
    pins now (a release its smoke cases failed on, said so) and the command that settles it (`commands`: how it names
    it; by default, plainly on the deployer's target)."""
    run = commands or Commands(deployer.target)
    entries = on_target(ledger.entries(), deployer.target)
    pinned = observed_pin(deployer, stack)
    shown = pinned or "no image goldgate could read"
    open_intents = interrupted(entries, stack)
    if not open_intents:
        return f"no change of {stack} is left open in the ledger; {stack} is pinned to {shown} (`{run.history()}`)"
    lost = open_intents[-1]
    aim = lost.image if lost.kind == "rollback" else lost.before   # what `rollback` without --to goes on to (_aim)
    back = (f"`{run.rollback()}` puts back {aim}" if any(r.image == aim for r in verified_releases(entries, stack))
            else f"`{run.rollback(' --to <release>')}` pins a verified one (see `{run.history()}`)")
    change = f"the {lost.kind} of {lost.image} on {stack} (ledger #{lost.intent_seq}) did not finish"
    failed = _smoke_failed(entries, stack, pinned)
    if lost.kind == "rollback" and failed is not None and pinned == lost.image and failed.seq < lost.intent_seq:
        # A rollback to the release it pins, begun after that release's run there failed, is the newer change: what
        # `goldgate rollback` goes on to is that rollback, not "putting back" the release it is already on.
        return (f"{change} and no smoke run judged {lost.image} on {stack} since it began; {stack} is pinned to "
                f"{shown}; its {_run(failed)} there before that rollback failed (ledger #{failed.seq}); "
                f"{_finish(run)}")
    # A promotion of the release it pins, cut short before a smoke run judged it, is newer than any run that failed
    unjudged = lost.kind == "promotion" and unjudged_candidate(entries, stack) is not None
    if failed is not None and not (unjudged and pinned == lost.image):
        return f"{change}; {stack} is pinned to {shown}, whose {_run(failed)} failed there (ledger #{failed.seq}): {back}"
    if lost.kind != "promotion":
        return f"{change}; {stack} is pinned to {shown}; {back}"
    intent = next((e for e in entries if e.seq == lost.intent_seq), None)
    if not unjudged:   # its smoke run finished (passed) before the interrupt
        return f"{change}; {stack} is pinned to {shown}; {_again(intent, run)} tries it again, or {back}"
    return (f"{change} and no smoke run judged {lost.image} on {stack}; {stack} is pinned to {shown}"
            f"{_failed_before(failed)}; {_again(intent, run)} tries it again (and smokes it), or {back} (not a verdict "
            "on it)")


def _smoke_failed(entries: list[Entry], stack: str, image: str | None) -> Entry | None:
    """The last golden run of `image` on `stack`, when it failed: the stack serves a release found broken there. A
    passing run of named cases (`golden --case`) after the failure is no verdict, and leaves the failure standing."""
    last = next((e for e in reversed(entries) if e.kind == "golden" and e.authentic and e.get("stack") == stack
                 and e.get("image") == image and judged_image(e)), None) if image else None
    return last if last is not None and last.get("passed") is not True else None


def _run(golden: Entry) -> str:
    """"smoke run", "full golden run" or "run of N case(s) named with --case", as the ledger's entry recorded it."""
    return golden_run_named(golden)


def observed_pin(deployer: Deployer, stack: str) -> str | None:
    """What `stack` pins now, or None when it cannot be read: an outcome line is written either way (raising would
    leave its intent open, and the next command would record the change as interrupted)."""
    try:
        return deployer.current_image(stack)
    except GoldgateError:
        return None
