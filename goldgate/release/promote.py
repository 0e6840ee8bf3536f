"""Promotion, STAGING -> PROD: gate, pin the digest STAGING runs on PROD, deploy, wait for the rollout,
smoke-test PROD; if anything after the pin fails, roll back automatically to the last verified
release and smoke again. One PROD change at a time (the release lock); intent and outcome in the
ledger around every change.
"""

from __future__ import annotations

import hashlib
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError
from goldgate.release.cases import load_cases, references_for, shown_dir, suite_digests
from goldgate.release.deployers.base import Deployer, Progress, ServedPin
from goldgate.release.gate import Commands, ErrorRate, GateDecision, PromotionRefused, commands_for, evaluate
from goldgate.release.history import last_verified, on_target, release_ids
from goldgate.release.ledger import Entry, Ledger
from goldgate.release.lock import ReleaseLock
from goldgate.release.report import read_report
from goldgate.release.rollback import (
    RollbackOutcome,
    check_before_change,
    check_pin_current,
    deploy_and_smoke,
    observed_pin,
    pending_closeouts,
    reconcile,
    rollback_locked,
    telling_what_an_interrupt_left,
)
from goldgate.release.verification import DEFAULT_PATHS, GoldenPaths, check_runs_as_declared


@dataclass(frozen=True)
class PromotionOutcome:
    outcome: str              # promoted | rolled_back | smoke_failed | smoke_not_run | deploy_failed
    image: str
    release_id: str | None
    before: str | None
    prod_image: str | None    # what PROD is pinned to at the end
    gate: GateDecision
    smoke_report: str | None
    smoke_passed: bool
    rollback: RollbackOutcome | None
    duration_s: float
    error: str | None = None
    unchanged: bool = False   # a deploy that failed before PROD's pin moved: nothing to roll back
    unconfirmed: bool = False  # PROD took the image (pulumi up applied it), but its rollout was not confirmed
    # How the message names the commands to run next: on the promotion's target, with the golden paths it was given.
    commands: Commands = field(default_factory=Commands)

    @property
    def ok(self) -> bool:
        return self.outcome == "promoted"

    def message(self) -> str:
        if self.ok:
            return f"PROD now serves {self.image} (smoke passed)"
        what = {"smoke_failed": "PROD smoke failed", "deploy_failed": "PROD deploy failed",
                "smoke_not_run": "PROD smoke did not run"}.get(self.outcome, self.outcome)
        if self.unconfirmed:   # PROD served it, or was rolling to it, until the rollback (if any) below
            what = "PROD rollout not confirmed"
        run = self.commands
        if self.unchanged:
            tail = "the deploy changed nothing, so nothing was rolled back"
            todo = f"{self.image} was not judged: fix the cause above, then `{run.promote()}` again"
        elif self.rollback is None:
            tail = "no earlier verified release to roll back to"
            todo = "fix the cause and promote a fixed build"
        elif self.rollback.ok:
            tail, todo = f"rolled back automatically to {self.rollback.image} (smoke passed)", ""
        elif "smoke_not_run" in (self.outcome, self.rollback.outcome):
            # Neither smoke run judged its release: "PROD's own fault" and --retry-rejected would send the operator
            # after a verdict the ledger does not hold.
            why = self.rollback.outcome.replace("_", " ") + (
                ", for the same reason" if self.rollback.error == self.error else
                f": {self.rollback.error}" if self.rollback.error else "")
            tail = f"the automatic rollback to {self.rollback.image} was not verified either ({why})"
            todo = ""
        elif self.rollback.rollout_confirmed is False:
            # PROD took the release it went back to, unwatched: no fault of PROD's or of that release is known.
            tail = f"the automatic rollback to {self.rollback.image} was applied, its rollout not confirmed either"
            todo = (f"once RunPod's rollout can be watched again, `{run.rollback(' --to ' + self.rollback.image)}` "
                    "finishes the rollback")
        else:  # PROD is on no verified release now: the operator has to act, and needs to be told how
            why = self.rollback.outcome.replace("_", " ") + (f": {self.rollback.error}" if self.rollback.error else "")
            tail = f"the automatic rollback to {self.rollback.image} failed too ({why})"
            # The release the rollback went back to passed its smoke on PROD before: that it fails now points at
            # PROD itself, not at the release before it (docs/RUNBOOK.md, "A failed promotion").
            # `goldgate status` reads the local stacks only: the cloud checklist reads a cloud PROD's endpoint, and its
            # workers' logs are in RunPod's console.
            where = ("`goldgate status prod`" if run.target == "local" else
                     "`goldgate checklist prod --target cloud`, and the worker logs in RunPod's console")
            todo = (f"the fault is most likely PROD's own: fix it (the smoke errors, {where}), then "
                    f"`{run.rollback(' --to ' + self.rollback.image)}` and `{run.promote(' --retry-rejected')}`")
        # The smoke report the runbook says to read: the operator should not have to find it by its timestamp.
        report = f" (smoke report {self.smoke_report})" if self.smoke_report and not self.smoke_passed else ""
        # None: no pin, or one that could not be read at the end (observed_pin), not an image named "None".
        pinned = self.prod_image or "no image goldgate could read"
        if self.outcome == "smoke_not_run":
            todo = (f"no smoke case ran, so nothing was judged of {self.image} (no ledger verdict against it): "
                    f"settle the cause above, then `{run.promote()}` again")
        return f"{what} for {self.image}{report}{': ' + self.error if self.error else ''}; {tail}; PROD is " \
               f"pinned to {pinned}{': ' + todo if todo else ''}"

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "ok": self.ok, "image": self.image, "release_id": self.release_id,
                "before": self.before, "prod_image": self.prod_image, "gate": self.gate.to_dict(),
                "smoke_report": self.smoke_report, "smoke_passed": self.smoke_passed,
                "rollback": self.rollback.to_dict() if self.rollback else None,
                "duration_s": round(self.duration_s, 3), "error": self.error, "message": self.message(),
                **({"applied": self.image, "rollout_confirmed": False} if self.unconfirmed else {})}


# The all-zero digest the shipped stack files hold until a first release: no image was ever built with it.
_SHIPPED_PLACEHOLDER = "@sha256:" + "0" * 64


def smoke_at_limit(prod: str, image: str | None) -> str:
    """What a PROD at its daily spend limit would cost a promotion, in the refusal's words: one wording for the
    promotion and for `promote --check`, which says the refusal before it is met."""
    return (f"this promotion's smoke run could not run: {prod} would take {image or 'the candidate'} unverified and be "
            "rolled back for nothing")


def shipped_placeholder(image: str) -> bool:
    """Whether `image` is the stack file's placeholder pin, never a release: nothing for a rollback to go back to."""
    return image.endswith(_SHIPPED_PLACEHOLDER)


def check_gate(deployer: Deployer, ledger: Ledger, report_path: Path, *, staging: str = "staging",
               prod: str = "prod", now: datetime | None = None, expected_image: str | None = None,
               cases_dir: Path | None = None, references_dir: Path | None = None,
               retry_rejected: bool = False, reports_dir: Path | None = None,
               ) -> tuple[GateDecision, dict[str, Any], str]:
    """Evaluate the gate for the report at `report_path` against what STAGING runs now, the workflow version
    `prod` declares, if given the digest the caller approved and, if given, the golden suite in `cases_dir` (the
    report must cover every case of it, and its golden run must have run each as `cases_dir` defines it); returns the
    decision, the report and the sha256 of the report as read. `retry_rejected` is the operator's word that a digest
    PROD found wanting may go back there (`promote --retry-rejected`). `reports_dir` is where the golden run writes
    the report a promotion reads (by default, the directory of `report_path`): the advice names it with the commands."""
    ledger.require_key_if_signed("evaluate the gate")
    commands = commands_for(deployer.target, cases_dir=cases_dir, references_dir=references_dir,
                            reports_dir=report_path.parent if reports_dir is None else reports_dir)
    cases = None if cases_dir is None else load_cases(cases_dir)
    suite = None if cases is None else [case.id for case in cases]
    # The default references are the target's own (references/<target>): those a golden run on it compares with.
    references_dir = None if references_dir is None else references_for(references_dir, deployer.target)
    references = None if cases is None or references_dir is None else {
        case.reference_name: _sha256_or_none(references_dir / case.reference_name) for case in cases}
    report, sha = read_report(report_path, commands.on)
    staging_image = deployer.current_image(staging)
    # A local STAGING whose host serves its pin runs that pin, whatever deploy the ledger recorded last: a deploy cut
    # short by its host's crash, which `goldgate up` then completed on the pin, left no ledger entry, and is no
    # checkout older than STAGING. The cloud's pin (a checkout's stack file) has no such witness: the ledger judges.
    served = getattr(deployer, "served_pin", lambda _stack: None)(staging)
    served = served if served is not None and served.image == staging_image else None
    staging_spec = deployer.spec(staging)
    thresholds = staging_spec.thresholds
    versions = {staging: staging_spec.workflow_version, prod: deployer.spec(prod).workflow_version}
    now = now or datetime.now(UTC)
    entries = on_target(ledger.entries(), deployer.target)   # a state dir may hold the other target's releases too
    runs = [e for e in entries if e.kind == "golden" and e.get("report_sha256") == sha]
    # A forged copy of a run's entry must not hide the run itself: an authenticated one is the evidence if any is.
    run = next((e for e in reversed(runs) if e.authentic), runs[-1] if runs else None)
    recorded = None if run is None else run.to_dict()
    # A later full run replaces this one's verdict; a later smoke run only when it failed (a pass covers a few cases).
    superseded = None if recorded is None else next(
        (e.to_dict() for e in reversed(entries) if e.seq > recorded["seq"] and e.kind == "golden"
         and e.get("stack") == staging and e.get("image") == report.get("image")
         # a later full run closes it, and so does any later run that failed; a run of named cases (`--case`,
         # `only_cases`: one case looked into) that passed does not
         and ((e.get("suite") == "full" and not e.get("only_cases")) or e.get("passed") is not True)), None)
    reasons = {e.seq: e.get("reason") for e in entries if e.kind == "rollback" and e.get("phase") == "intent"}
    # PROD's last verdict on the digest, whenever it came: a STAGING run after it cannot see a fault only PROD shows.
    verdict = next((e for e in reversed(entries) if _rejected(e, prod, report.get("image"), reasons)
                    or _verified_on(e, prod, report.get("image"))), None)
    rejected = None if verdict is None or _verified_on(verdict, prod, report.get("image")) else verdict.to_dict()
    since = _unrecorded_since(entries, staging, served) or _deployed_at(entries, staging, staging_image) or (
        now - timedelta(seconds=thresholds.report_max_age_s))
    error_rate: ErrorRate | None
    try:
        error_rate = deployer.error_rate(staging, since)
    except GoldgateError:
        error_rate = None
    return evaluate(report, staging_image, thresholds, error_rate, now=now, staging_stack=staging,
                    recorded=recorded, workflow_versions=versions, superseded_by=superseded,
                    redeployed_by=None if served is not None else _redeployed(entries, staging, staging_image),
                    rejected_by=rejected, expected_image=expected_image, suite=suite,
                    references=references, ledger_keyed=ledger.keyed,
                    recorded_problem=None if run is None else run.mac_problem(),
                    definitions=None if cases is None else suite_digests(cases),
                    suite_dir="the golden suite" if cases_dir is None else shown_dir(cases_dir),
                    retry_rejected=retry_rejected,
                    references_dir=None if references_dir is None else shown_dir(references_dir),
                    unconfirmed_deploy=_unconfirmed_before(entries, staging, report.get("image"), run),
                    commands=commands), report, sha


def promote(deployer: Deployer, ledger: Ledger, home: Path, *, report_path: Path | None = None,
            staging: str = "staging", prod: str = "prod", trigger: str = "user",
            progress: Progress = lambda _m: None, paths: GoldenPaths = DEFAULT_PATHS,
            now: datetime | None = None, expected_image: str | None = None,
            retry_rejected: bool = False) -> PromotionOutcome:
    """`expected_image` is the digest the caller approved (`promote --image`): the gate refuses any other.
    `retry_rejected` lets a digest PROD found wanting go back there (`promote --retry-rejected`, an operator's
    decision; recorded in the ledger, so on a signed ledger it needs the key as any promotion does).
    Raises PromotionRefused (nothing changed), ReleaseLocked, StalePin (PROD's stack file is older than its last
    recorded change), or GoldgateError when `prod` is not the stack whose role is prod or `staging` is (nothing
    recorded or deployed); otherwise returns the outcome."""
    t0 = time.monotonic()
    _check_stacks(deployer, staging, prod)
    # A PROD whose smoke run would refuse to run (its stacks file edited since it started) would take the digest
    # and then fail to vouch for it: refused before the gate, the ledger or PROD changes.
    check_runs_as_declared(deployer, prod, f"cannot promote to {prod}")
    report_path = report_path or paths.reports_dir / "latest.json"
    # The commands the advice names, on this promotion's target: a cloud operator copying `goldgate promote` would act
    # on the local stacks.
    run = commands_for(deployer.target, cases_dir=paths.cases_dir, references_dir=paths.references_dir,
                       reports_dir=paths.reports_dir)
    # Ctrl-C, or SIGTERM from a cancelled CI job, is followed by a line on what PROD was left on and what to run.
    told = telling_what_an_interrupt_left(deployer, ledger, prod, progress, run)
    with ReleaseLock(home, f"promote {staging} -> {prod}", again=run.promote()), told:
        ledger.require_key_if_signed(f"promote to {prod}")
        check_pin_current(deployer, ledger, prod)
        reconcile(deployer, ledger, prod, progress, run)
        decision, sha = _pass_the_gate(deployer, ledger, report_path, staging=staging, prod=prod, now=now,
                                       expected_image=expected_image, paths=paths, retry_rejected=retry_rejected,
                                       trigger=trigger)
        retried = {"retry_rejected": True} if retry_rejected else {}
        # The smoke cases decide whether PROD keeps the candidate: cases that cannot run would fail the smoke
        # after PROD changed, and the automatic rollback's smoke too. Found out now, PROD is untouched.
        check_before_change(deployer, prod, paths, progress, doing=f"promote to {prod}", change="this promotion",
                            at_limit=smoke_at_limit(prod, decision.image))
        image = str(decision.image)
        before = deployer.current_image(prod)
        rid = release_ids(ledger.entries()).get(image)
        intent = ledger.append("promotion", phase="intent", stack=prod, target=deployer.target, image=image,
                               release_id=rid, before=before, report=str(report_path), report_sha256=sha,
                               gate=decision.to_dict(), trigger=trigger, **retried)
        was = "nothing: its first release" if not before or shipped_placeholder(before) else before
        progress(f"gate passed; promoting {image} to {prod} (was {was})")
        deployed: dict[str, Any] = {}   # filled when PROD took the image but its rollout was not confirmed
        outcome, error, smoke_path, smoke_passed = deploy_and_smoke(deployer, ledger, prod, image, "promoted",
                                                                     trigger=trigger, progress=progress,
                                                                     paths=paths, deployed=deployed)
        rolled, unchanged = _roll_back_a_failure(deployer, ledger, prod, image, before, was, outcome, error,
                                                 deployed=deployed, trigger=trigger, progress=progress, paths=paths)
        # Read as a rollback reads it: a pin that cannot be read now is recorded as unknown; raising here would leave
        # the intent open, and the next command would record a promotion whose smoke passed as interrupted.
        prod_image = observed_pin(deployer, prod)
        ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack=prod, target=deployer.target,
                      image=image, release_id=rid, before=before, after=prod_image, pinned=prod_image,
                      prod_image=image if outcome == "promoted" else None, outcome=outcome,
                      smoke_report=smoke_path, smoke_passed=smoke_passed, error=error,
                      rollback=rolled.to_dict() if rolled else None, trigger=trigger, **deployed)
    return PromotionOutcome(outcome=outcome, image=image, release_id=rid, before=before, prod_image=prod_image,
                            gate=decision, smoke_report=smoke_path, smoke_passed=smoke_passed, rollback=rolled,
                            duration_s=time.monotonic() - t0, error=error, unchanged=unchanged,
                            unconfirmed=bool(deployed), commands=run)


def _pass_the_gate(deployer: Deployer, ledger: Ledger, report_path: Path, *, staging: str, prod: str,
                   now: datetime | None, expected_image: str | None, paths: GoldenPaths, retry_rejected: bool,
                   trigger: str) -> tuple[GateDecision, str]:
    """The gate's decision that lets the promotion go on, and the sha256 of the report it read; a refusal is
    recorded in the ledger and raised as PromotionRefused."""
    # A golden run of STAGING under way writes the newest evidence for its image: gating on the report before it
    # promoted a digest whose newest run was about to fail (the local target: `gate_hold`).
    hold = getattr(deployer, "gate_hold", None)
    # One that cannot be read is refused before that lock is taken (nothing written).
    read_report(report_path, commands_for(deployer.target).on)
    with hold(staging) if callable(hold) else nullcontext():
        decision, _report, sha = check_gate(deployer, ledger, report_path, staging=staging, prod=prod, now=now,
                                            expected_image=expected_image, cases_dir=paths.cases_dir,
                                            references_dir=paths.references_dir, retry_rejected=retry_rejected,
                                            reports_dir=paths.reports_dir)
    if not decision.passed:
        retried = {"retry_rejected": True} if retry_rejected else {}
        ledger.append("promotion", phase="refused", stack=prod, target=deployer.target,
                      image=deployer.current_image(staging), report=str(report_path), report_sha256=sha,
                      gate=decision.to_dict(), trigger=trigger, **retried)
        raise PromotionRefused(decision)
    return decision, sha


def _roll_back_a_failure(deployer: Deployer, ledger: Ledger, prod: str, image: str, before: str | None, was: str,
                         outcome: str, error: str | None, *, deployed: dict[str, Any], trigger: str,
                         progress: Progress, paths: GoldenPaths) -> tuple[RollbackOutcome | None, bool]:
    """After a promotion that did not end promoted, roll PROD back to the last verified release (else to the one it
    ran before). Returns the rollback (None when none ran) and whether the deploy left PROD's pin unchanged."""
    rolled: RollbackOutcome | None = None
    # A deploy refused before PROD's pin moved (a RunPod key RunPod refuses, say): a rollback would only be
    # refused the same way, and be recorded as a failed rollback of a PROD that never changed.
    unchanged = outcome == "deploy_failed" and not deployed and before is not None \
        and observed_pin(deployer, prod) == before
    if outcome != "promoted":
        progress(f"{outcome.replace('_', ' ')} on {prod}: {error}")
    if unchanged:
        progress(f"{prod} still pins {was}: the deploy changed nothing, so nothing is rolled back")
    elif outcome != "promoted":
        target = last_verified(on_target(ledger.entries(), deployer.target), exclude=image, stack=prod)
        fallback = target.image if target else (before if before and before != image
                                                and not shipped_placeholder(before) else None)
        if fallback:
            rolled = rollback_locked(deployer, ledger, fallback, stack=prod, trigger=trigger,
                                     reason=f"automatic: promotion of {image} {outcome.replace('_', ' ')}",
                                     progress=progress, paths=paths)
    return rolled, unchanged


class _Previewed:
    """A ledger as it will read once `reconcile` has closed the changes left open (nothing is written): `promote
    --check` judges with it, so it says what the promotion's gate will say."""

    def __init__(self, ledger: Ledger, closeouts: list[Entry]) -> None:
        self._ledger, self._closeouts = ledger, closeouts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    def entries(self) -> list[Entry]:
        return [*self._ledger.entries(), *self._closeouts]


def previewed(deployer: Deployer, ledger: Ledger, prod: str = "prod") -> Ledger:
    """`ledger` with the outcome lines the next promotion's `reconcile` would append for `prod`, none written."""
    entries = ledger.entries()
    seq = entries[-1].seq if entries else 0
    ts = datetime.now(UTC).isoformat()
    closeouts = [Entry(seq=seq + n, ts=ts, kind=item.kind, fields=fields, prev="", hash="")
                 for n, (item, fields) in enumerate(pending_closeouts(deployer, ledger, prod), start=1)]
    return ledger if not closeouts else _Previewed(ledger, closeouts)  # type: ignore[return-value]


def _check_stacks(deployer: Deployer, staging: str, prod: str) -> None:
    """`prod` must be the stack whose role is prod, and `staging` another one: checked before the ledger or any
    stack is touched (a STAGING stack named as `prod` would take the image and be recorded as PROD's release)."""
    prod_role = deployer.spec(prod).role
    if prod_role != "prod":
        raise GoldgateError(f"cannot promote to {prod}: its role is {prod_role}, not prod; promote to the stack "
                            "whose role is prod")
    if deployer.spec(staging).role == "prod":
        raise GoldgateError(f"cannot promote from {staging}: its role is prod; the candidate comes from a STAGING "
                            "stack")


def _sha256_or_none(path: Path) -> str | None:
    """The sha256 of a reference image as this checkout holds it; None when it has none there."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _rejected(entry: Entry, prod: str, image: Any, reasons: dict[int, Any]) -> bool:
    """Did this ledger entry find `image` wanting on `prod`: a smoke run of it there that failed (recorded by the smoke
    run itself, so a promotion whose runner was lost during the automatic rollback that followed still counts), a
    promotion of it whose smoke cases failed, or an operator's rollback that took `prod` off it? An operator's rollback
    that was interrupted (its outcome, recorded by `reconcile`, has the intent's reason) is the operator's verdict
    whatever pin `reconcile` read: after a lost CI runner the next job's checkout pins what main pinned, the release
    the rollback was leaving, while the stack may run the one it went to. A failed deploy (and the automatic rollback
    after it) proves nothing about the image: retrying it stays possible."""
    if not isinstance(image, str):
        return False
    if entry.kind == "golden":
        return (entry.get("stack") == prod and entry.get("suite") == "smoke" and entry.get("image") == image
                and entry.get("passed") is not True)
    if entry.get("phase") != "outcome" or entry.get("stack", "prod") != prod:
        return False
    if entry.kind == "promotion":
        return entry.get("image") == image and entry.get("outcome") == "smoke_failed"
    intent_seq = entry.get("intent_seq")
    # Outcomes `reconcile` wrote before it kept the reason: the intent's says whose rollback it was.
    reason = entry.get("reason", reasons.get(intent_seq) if isinstance(intent_seq, int) else None)
    return (entry.kind == "rollback" and reason == "manual" and entry.get("before") == image
            and (entry.get("after") != image
                 or (entry.get("outcome") == "interrupted" and entry.get("image") != image)))


def _verified_on(entry: Entry, prod: str, image: Any) -> bool:
    """Did this ledger entry verify `image` on `prod`: a promotion or rollback whose smoke cases passed there with it?
    Only an authenticated one counts when a ledger key is in use: a forged one would clear PROD's verdict."""
    return (entry.kind in ("promotion", "rollback") and entry.get("phase") == "outcome" and entry.authentic
            and entry.get("stack", "prod") == prod and isinstance(image, str) and entry.get("prod_image") == image)


def _redeployed(entries: list[Entry], stack: str, pinned: str | None) -> dict[str, Any] | None:
    """The last deploy to `stack` when `pinned` is a pin `stack` had before it (a stack file older than that
    deploy); None otherwise. A pin the ledger never saw (a deploy that failed after the pin) is taken as is."""
    deploys = [e for e in entries if e.kind == "deploy" and e.get("stack") == stack]
    if pinned is None or not deploys or deploys[-1].get("after") == pinned:
        return None
    earlier = {e.get(key) for e in deploys for key in ("before", "after")}
    return deploys[-1].to_dict() if pinned in earlier else None


def _unrecorded_since(entries: list[Entry], stack: str, served: ServedPin | None) -> datetime | None:
    """When the pin `stack`'s host serves was written, if the ledger's last deploy to `stack` did not put it there (a
    deploy cut short, completed by `goldgate up`): its error-rate window starts there, not at an earlier deploy of the
    same image the ledger holds, which would count the jobs of the images in between (a pin that does not say when:
    the last deploy, which came before it). None otherwise."""
    if served is None:
        return None
    deploys = [e for e in entries if e.kind == "deploy" and e.get("stack") == stack and e.authentic]
    if deploys and deploys[-1].get("after") == served.image:
        return None
    if served.pinned_at is not None or not deploys:
        return served.pinned_at
    try:
        when = datetime.fromisoformat(deploys[-1].ts)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _unconfirmed_before(entries: list[Entry], stack: str, image: Any, run: Entry | None) -> dict[str, Any] | None:
    """`stack`'s last deploy before the golden run `run` (before now, with no run) when it was of `image` and its
    rollout was not confirmed; None otherwise. Under a ledger key only authenticated deploys count: a confirmed
    deploy appended without it would hide the unconfirmed one."""
    deploys = [e for e in entries if e.kind == "deploy" and e.get("stack") == stack and e.authentic
               and (run is None or e.seq < run.seq)]
    last = deploys[-1] if deploys else None
    if last is None or last.get("after") != image or last.get("rollout_confirmed") is not False:
        return None
    return last.to_dict()


def _deployed_at(entries: list[Entry], stack: str, image: str | None) -> datetime | None:
    """When `image` was last deployed to `stack`, per the ledger: the error-rate window starts there. Only an
    authenticated deploy counts when a ledger key is in use: a forged later one would hide the failures before it."""
    if image is None:
        return None
    deploys = [e for e in entries if e.kind == "deploy" and e.get("stack") == stack and e.authentic]
    for n in range(len(deploys) - 1, -1, -1):
        e = deploys[n]
        if e.get("after") == image:
            # A deploy whose rollout was not confirmed put the image there already (its redeploy only watched it):
            # the window starts at the first of them.
            while n > 0 and deploys[n - 1].get("after") == image and deploys[n - 1].get("rollout_confirmed") is False:
                n -= 1
            e = deploys[n]
            try:
                when = datetime.fromisoformat(e.ts)
            except ValueError:
                return None
            return when if when.tzinfo is not None else None   # goldgate writes UTC; a naive time compares with none
    return None
