"""The promotion gate: a pure decision over the evidence. PROD may only take the digest STAGING runs
now (and, when the caller names the digest it approved, only that one), and only with a passing, fresh
golden report for exactly that digest, that a golden run on STAGING wrote and recorded in the ledger (so
a report edited by hand opens nothing), a mean latency within the threshold, and STAGING's error rate
within its threshold. Every failed condition is named. With a ledger key in use, that golden run's ledger entry must
carry a valid MAC: a forged entry appended to the ledger branch (its hash chain recomputed) opens nothing.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError
from goldgate.release.cases import (
    GOLDEN_DIR,
    REFERENCES_DIR,
    REPO_ROOT,
    GitUnreadable,
    references_for,
    shown_dir,
    uncommitted_references,
)
from goldgate.release.report import ADD_A_CASE, REPORTS_DIR
from goldgate.spec import Thresholds

# A record (a golden report, a DR drill, a prune) this far ahead of our clock was dated by another machine (a CI runner
# whose clock runs fast); further ahead, it is not evidence of anything that happened. The gate and the checklist
# (goldgate/ops/checklist.py) both use this one allowance.
CLOCK_SKEW_S = 300


class PromotionRefused(GoldgateError):
    """The gate said no; the message lists each failed condition."""

    def __init__(self, decision: GateDecision) -> None:
        super().__init__("promotion refused: " + "; ".join(
            f"{c.name}: {c.detail}" for c in decision.conditions if not c.passed))
        self.decision = decision


@dataclass(frozen=True)
class Commands:
    """The goldgate commands advice names, each written to run as named: on the target the promotion acts on (without
    `--target` a command acts on the local one) and, off the local target, with the golden paths the promotion was
    given to the commands that read them (`golden`, `promote`, `rollback`; without them, the checkout's). The local
    target's commands read as the docs and the runbook quote them."""

    target: str = "local"
    cases_dir: str | None = None
    references_dir: str | None = None
    reports_dir: str | None = None

    @property
    def on(self) -> str:
        return "" if self.target == "local" else f" --target {self.target}"

    def paths(self, references: bool = True) -> str:
        """The golden paths given, as options (none on the local target); `references` False leaves out
        --references-dir, for a caller that names the references directory itself."""
        if self.target == "local":
            return ""
        given = (("cases-dir", self.cases_dir), ("references-dir", self.references_dir if references else None),
                 ("reports-dir", self.reports_dir))
        return "".join(f" --{option} {shlex.quote(value)}" for option, value in given if value)

    def golden(self, stack: str, options: str = "") -> str:
        return f"goldgate golden {stack}{options}{self.on}{self.paths()}"

    def promote(self, options: str = "") -> str:
        return f"goldgate promote{options}{self.on}{self.paths()}"

    def rollback(self, options: str = "") -> str:
        return f"goldgate rollback{options}{self.on}{self.paths()}"

    def history(self) -> str:
        return f"goldgate history{self.on}"


def commands_for(target: str, *, cases_dir: Path | None = None, references_dir: Path | None = None,
                 reports_dir: Path | None = None) -> Commands:
    """The Commands of a promotion or rollback on `target` given these golden paths: each named only when it is not
    the checkout's own (scripts/golden-tests/...), which a command reads without being told."""
    def given(path: Path | None, default: Path) -> str | None:
        return None if path is None or path.resolve() == default.resolve() else shown_dir(path)

    return Commands(target, given(cases_dir, GOLDEN_DIR / "cases"), given(references_dir, REFERENCES_DIR),
                    given(reports_dir, REPORTS_DIR))


@dataclass(frozen=True)
class ErrorRate:
    """STAGING's job outcomes over a window: failed / terminal."""

    jobs: int
    failed: int
    since: str

    @property
    def rate(self) -> float:
        return self.failed / self.jobs if self.jobs else 0.0


@dataclass(frozen=True)
class Condition:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateDecision:
    conditions: tuple[Condition, ...]
    image: str | None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.conditions)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "image": self.image,
                "conditions": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.conditions]}


def evaluate(report: dict[str, Any], staging_image: str | None, thresholds: Thresholds,
             error_rate: ErrorRate | None, now: datetime | None = None,
             staging_stack: str = "staging", recorded: Mapping[str, Any] | None = None,
             workflow_versions: Mapping[str, str] | None = None,
             superseded_by: Mapping[str, Any] | None = None,
             redeployed_by: Mapping[str, Any] | None = None,
             rejected_by: Mapping[str, Any] | None = None, expected_image: str | None = None,
             suite: Collection[str] | None = None,
             references: Mapping[str, str | None] | None = None,
             ledger_keyed: bool = False, recorded_problem: str | None = None,
             definitions: Mapping[str, str] | None = None, suite_dir: str = "the golden suite",
             retry_rejected: bool = False, references_dir: str | None = None,
             unconfirmed_deploy: Mapping[str, Any] | None = None,
             references_git: Callable[[Path, Collection[str]], Mapping[str, str] | None] = uncommitted_references,
             commands: Commands | None = None) -> GateDecision:
    """Check the report and STAGING against the thresholds; never raises on a malformed report.

    `recorded` is the ledger's entry for the golden run that wrote this very report (matched by the
    report's sha256), or None when no run did. `superseded_by` is a later full golden run on STAGING for
    the same image, or a later smoke run there that failed, if any: the newest run for a digest is its evidence, so
    an earlier pass cannot outvote a later failure (`promote --report <an older dated copy>`, `golden --smoke`).
    `workflow_versions` maps each stack the release concerns (STAGING now, the PROD it goes to) to the workflow
    version its spec declares: a release is the digest and the workflow version, so the report must be for the
    version PROD will serve.
    `redeployed_by` is the ledger's last deploy to STAGING when `staging_image` is a pin STAGING had before it:
    the stack file read is older than STAGING (a re-run of an earlier CI run), so it does not say what STAGING
    runs now. `rejected_by` is PROD's last verdict on the report's digest when it found it wanting (its smoke cases
    failed there, or an operator's rollback took PROD off it), before or after this golden run: a fault that shows
    only on PROD passes every STAGING run, so neither a re-run of the failed promotion nor a new golden run puts the
    digest back on PROD; only `retry_rejected` (the operator's `promote --retry-rejected`) does. `expected_image` is the
    digest the caller approved (`promote --image`, CI's build): the report and STAGING must both be for it, so an
    approval given for one digest cannot promote another that STAGING took since. `suite` is the id of every golden
    case: the report must have run each of them, so a run over a few cases (`golden --cases-dir <a subset>`, while
    debugging one case) is not taken for the golden tests. `references` is the sha256 of each reference image the
    suite compares with, as the gate's checkout holds it (None for a file it lacks): the report must have compared
    with those very files, so a run against another directory (`golden --references-dir` holding the candidate's
    own renders, which compares each render with itself) does not open the gate; `references_dir` is the directory
    they were read from, as the advice names it (by default, that of the report's target: references/<target>).
    In a git checkout, each must also be committed as it is (`references_git`, one `git status` over them: a file
    untracked or modified there passes this checkout's gate and is not what CI's checkout holds); outside git (an
    unpacked tarball) they are named as the checkout's files; in a checkout git will not read (another user's, which git
    refuses; no git installed), the condition fails, naming why and the way out.
    A full report that records the workflows its stack served (`workflows`) must have run a case of each
    (`report_workflows_covered`): a workflow no case runs would reach PROD untested. `ledger_keyed` says a ledger key is
    in use; `recorded_problem` is then why `recorded` cannot be trusted (no MAC, or one that does not verify), None
    when its MAC verifies. `definitions` is the suite the promotion names (`suite_dir`, by default the checkout's
    scripts/golden-tests/cases): each case's id -> the digest of its definition. With it, the golden run recorded as
    `recorded` must have run every one of those cases as defined there: a run over part of the suite, or over a copy
    with a case's limits loosened, is not a pass of the suite; an entry that does not say (an older goldgate wrote
    it) is refused, and one more `goldgate golden` run records it. `unconfirmed_deploy` is STAGING's last deploy
    before that golden run when it was of the report's digest and its rollout was not confirmed (`pulumi up` applied
    it and the watch failed): the run's cases may have run on workers of the release before it. `commands` names the
    commands the advice gives as they run on the promotion's target (by default, that of the report)."""
    now = now or datetime.now(UTC)
    commands = commands or Commands("cloud" if report.get("target") == "cloud" else "local")
    pinned = staging_image
    if redeployed_by is not None:
        staging_image = redeployed_by.get("after")  # what STAGING runs, for the conditions below
    digest = _report_digest(report, staging_image, staging_stack, commands)
    # In the order PromotionRefused names the failed ones; a check that does not apply here gives None.
    checks = (
        _staging_image(pinned, redeployed_by, staging_stack),
        _report_passed(report, recorded, staging_stack, commands),
        _report_workflows_covered(report, staging_stack, commands),
        _report_cases(report, recorded, suite, definitions, suite_dir, staging_stack, commands),
        None if references is None else _cond("report_references_match", *_references_match(
            report, references, staging_stack, references_dir, references_git, commands)),
        _report_stack(report, staging_stack),
        digest,
        _expected_image(report, expected_image, staging_image, staging_stack, commands),
        _report_recorded(report, recorded, superseded_by, staging_stack, commands),
        _staging_rollout(unconfirmed_deploy, recorded, staging_stack, commands),
        _report_authenticated(recorded, recorded_problem, staging_stack, commands) if ledger_keyed else None,
        _report_references(report, recorded, staging_stack, commands),
        _prod_verdict(report, rejected_by, retry_rejected, staging_stack, commands),
        _report_workflow_version(report, workflow_versions, staging_stack, commands),
        _cond("report_fresh", *report_freshness(report.get("finished_at"), now, thresholds.report_max_age_s,
                                                f"`{commands.golden(staging_stack)}`")),
        _mean_latency(report, thresholds),
        _error_rate(report, error_rate, thresholds, staging_image, staging_stack, commands),
    )
    return GateDecision(tuple(c for c in checks if c is not None),
                        staging_image if digest.passed and redeployed_by is None else None)


def _cond(name: str, passed: Any, detail: str) -> Condition:
    # Every condition is written `_cond("<name>", ...)`: the runbook's test reads their names from this file.
    return Condition(name, bool(passed), detail)


def _staging_image(pinned: str | None, redeployed_by: Mapping[str, Any] | None, stack: str) -> Condition:
    """Does STAGING run an image, and is the one this checkout pins there what it runs now?"""
    if redeployed_by is not None:
        return _cond("staging_image", False,
                     f"this checkout pins {pinned} on {stack}, but its last deploy (ledger "
                     f"#{redeployed_by.get('seq')}) put {redeployed_by.get('after')} there: the stack file is older "
                     "than STAGING (a re-run of an earlier CI run?); start a new run from the newest main")
    return _cond("staging_image", pinned is not None,
                 f"STAGING runs {pinned}" if pinned else "STAGING has no image deployed")


def _report_passed(report: Mapping[str, Any], recorded: Mapping[str, Any] | None, stack: str,
                   commands: Commands) -> Condition:
    """Did the golden report pass, as a run of the whole suite?"""
    # A run of the cases `golden --case` named is no run of the suite, even when it named every case: it did not check
    # that a case runs each workflow the stack serves (its report has no `workflows`), so it cannot stand for the suite.
    named = _named_cases(report) or (_named_cases(recorded) if recorded is not None else None)
    passed = report.get("passed") is True and report.get("suite", "full") == "full" and named is None
    failures = report.get("failures")
    failures = failures if isinstance(failures, list) else []
    suite_side = suite_side_only(report, failures)
    return _cond("report_passed", passed,
                 "the latest golden report passed" if passed else
                 f"the report is of a run of {named} named with `--case`, not of the golden suite (it never checks "
                 f"that a case runs each workflow {stack} serves): run `{commands.golden(stack)}` without --case"
                 if named is not None else
                 "the latest golden report did not pass" + (f" ({_failures(failures)})" if failures else "")
                 # A failed run calls for a fix and a new candidate, not another run of the same one (docs/RUNBOOK.md);
                 # unless all it lacked was on the suite's side (a case for a workflow, a reference): the image is
                 # not at fault.
                 + ("" if report.get("suite", "full") != "full" or report.get("passed") is True else
                    f": the image is not at fault: {suite_side}, then run `{commands.golden(stack)}` on the same "
                    "image"
                    if suite_side else
                    f": fix the cause and deploy the fixed build to {stack}, then run `{commands.golden(stack)}` "
                    "on it"))


def _report_workflows_covered(report: Mapping[str, Any], stack: str, commands: Commands) -> Condition | None:
    """Did a case run each workflow the stack served? Only a full report that recorded them can say."""
    workflows = report.get("workflows")
    if report.get("suite", "full") == "full" and isinstance(workflows, Mapping):
        return _cond("report_workflows_covered", *_workflows_covered(workflows, stack, commands))
    return None


def _report_cases(report: Mapping[str, Any], recorded: Mapping[str, Any] | None, suite: Collection[str] | None,
                  definitions: Mapping[str, str] | None, suite_dir: str, stack: str,
                  commands: Commands) -> Condition | None:
    """Did the run cover every golden case: as the promotion's suite defines each (its recorded run's word), else by
    the ids the report ran? None when the caller named no suite."""
    if definitions is not None and recorded is not None:
        return _cond("report_cases", *_ran_the_suite(recorded, definitions, suite_dir, stack, commands))
    if suite is None:
        return None
    cases = report.get("cases")
    ran_ids = {c.get("id") for c in cases if isinstance(c, Mapping) and isinstance(c.get("id"), str)} \
        if isinstance(cases, list) else set()
    missing = sorted(set(suite) - ran_ids)
    return _cond("report_cases", not missing,
                 f"the report ran all {len(set(suite))} golden cases" if not missing else
                 f"the report ran {len(set(suite)) - len(missing)} of the {len(set(suite))} golden cases (missing: "
                 f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}): a run over other cases is not the "
                 f"golden suite; run `{commands.golden(stack)}` with every case")


def _report_stack(report: Mapping[str, Any], stack: str) -> Condition:
    same_stack = report.get("stack") == stack
    return _cond("report_stack", same_stack, f"report is for stack {report.get('stack')!r}"
                 + ("" if same_stack else f", expected {stack!r}"))


def _report_digest(report: Mapping[str, Any], staging_image: str | None, stack: str,
                   commands: Commands) -> Condition:
    """Is the report for the digest STAGING runs now? Its pass makes that digest the decision's image."""
    same = staging_image is not None and report.get("image") == staging_image
    return _cond("report_digest", same,
                 f"report is for {report.get('image')}" + ("" if same else f", but STAGING now runs {staging_image}; "
                                                           f"run `{commands.golden(stack)}` for the image it "
                                                           "runs"))


def _expected_image(report: Mapping[str, Any], expected_image: str | None, staging_image: str | None,
                    stack: str, commands: Commands) -> Condition | None:
    """Are the report and STAGING both for the digest the caller approved? None when it approved none."""
    if expected_image is None:
        return None
    approved = report.get("image") == expected_image == staging_image
    return _cond("expected_image", approved,
                 f"promoting only {expected_image}: the report is for {report.get('image')} and STAGING runs "
                 f"{staging_image}" + ("" if approved else
                                       f"; the approval is for {expected_image} only: deploy it to {stack} and "
                                       f"run `{commands.golden(stack)}`, or approve what STAGING runs"))


def _report_recorded(report: Mapping[str, Any], recorded: Mapping[str, Any] | None,
                     superseded_by: Mapping[str, Any] | None, stack: str, commands: Commands) -> Condition:
    """Did a full golden run on STAGING for the report's digest write it, and is that run still the newest?"""
    this_run = (recorded is not None and recorded.get("kind", "golden") == "golden" and recorded.get("suite") == "full"
                and _named_cases(recorded) is None
                and recorded.get("stack") == stack and recorded.get("image") == report.get("image"))
    ran = this_run and recorded is not None and recorded.get("passed") is True
    # A full run that failed, recorded as failed: its report is the run's own, and report_passed says what it calls
    # for. Failing here too would repeat that, and a new golden run of the same image is not the remedy.
    failed_run = this_run and recorded is not None and recorded.get("passed") is False \
        and report.get("passed") is False
    if (ran or failed_run) and superseded_by is not None:
        outcome = "passed" if superseded_by.get("passed") is True else "did not pass"
        run = "smoke run" if superseded_by.get("suite") == "smoke" else "golden run"
        return _cond("report_recorded", False,
                     f"a later {run} on {stack} for {report.get('image')} (ledger #{superseded_by.get('seq')}) "
                     f"{outcome}; only the newest run for a digest counts: gate on its report, or run "
                     f"`{commands.golden(stack)}`")
    if failed_run and recorded is not None:
        return _cond("report_recorded", True,
                     f"written by the golden run recorded as ledger #{recorded.get('seq')}, which did not pass (see "
                     "report_passed)")
    return _cond("report_recorded", ran,
                 f"written by the golden run recorded as ledger #{recorded.get('seq')}" if ran else
                 (f"the golden run that wrote this report (ledger #{recorded.get('seq')}) is not a passing full run "
                  f"on {stack} for {report.get('image')}" if recorded is not None else
                  "no golden run in the ledger wrote this report (it was edited, comes from another state dir, or a "
                  "git pull or checkout put back the tracked one)")
                 + f"; run `{commands.golden(stack)}`")


def _staging_rollout(unconfirmed_deploy: Mapping[str, Any] | None, recorded: Mapping[str, Any] | None,
                     stack: str, commands: Commands) -> Condition | None:
    """Fails when the golden run followed a deploy of its digest whose rollout was not confirmed; None otherwise."""
    if unconfirmed_deploy is None:
        return None
    image = unconfirmed_deploy.get("after")
    return _cond("staging_rollout", False,
                 f"the golden run{'' if recorded is None else ' (ledger #' + str(recorded.get('seq')) + ')'} followed "
                 f"{stack}'s deploy of {image} (ledger #{unconfirmed_deploy.get('seq')}), whose rollout was not "
                 "confirmed: its cases may have run on workers of the release before; deploy "
                 f"{image} to {stack} again (its rollout watched), then run `{commands.golden(stack)}`")


def _report_authenticated(recorded: Mapping[str, Any] | None, recorded_problem: str | None,
                          stack: str, commands: Commands) -> Condition:
    """Does the golden run's ledger entry carry a MAC that verifies under the ledger key?"""
    trusted = recorded is not None and recorded_problem is None
    return _cond("report_authenticated", trusted,
                 f"ledger #{recorded.get('seq')} carries a valid MAC" if trusted and recorded is not None else
                 (recorded_problem or "no ledger entry to authenticate") + "; only a golden run recorded under the "
                 f"ledger key qualifies a digest: run `{commands.golden(stack)}` with the key set")


def _report_references(report: Mapping[str, Any], recorded: Mapping[str, Any] | None, stack: str,
                       commands: Commands) -> Condition:
    """Did the run compare each render with the references, rather than rewrite them (--update-references)?"""
    # Fail closed: every report goldgate writes says whether the run rewrote the references.
    rewrote = report.get("references_updated") is not False or (
        recorded is not None and recorded.get("references_updated") is True)
    # Whether those references are committed is report_references_match's word, not this condition's.
    return _cond("report_references", not rewrote,
                 "the run compared each render with the references, not with itself (no --update-references)"
                 if not rewrote else
                 "the report comes from a `--update-references` run, which compares each render with itself; "
                 f"run `{commands.golden(stack)}` without it")


def _prod_verdict(report: Mapping[str, Any], rejected_by: Mapping[str, Any] | None, retry_rejected: bool,
                  stack: str, commands: Commands) -> Condition | None:
    """Fails when PROD found the report's digest wanting, unless the operator asked to retry it; None when it did
    not."""
    if rejected_by is None:
        return None
    verdict = ("its smoke cases failed there" if rejected_by.get("kind") in ("promotion", "golden") else
               f"an operator's rollback took {rejected_by.get('stack')} off it")
    prod = rejected_by.get("stack")
    found = f"{report.get('image')} went to {prod} and {verdict} (ledger #{rejected_by.get('seq')})"
    # A fault that shows only on PROD passes every STAGING run: a later golden run there proves nothing about it.
    return _cond("prod_verdict", retry_rejected,
                 f"{found}; the operator asked to retry it on {prod} (--retry-rejected)" if retry_rejected else
                 f"{found}; later golden runs on {stack} do not outvote {prod}'s verdict: fix it and release a "
                 f"new build, or, once the cause on {prod} is fixed, `{commands.promote(' --retry-rejected')}`")


def _report_workflow_version(report: Mapping[str, Any], workflow_versions: Mapping[str, str] | None,
                             stack: str, commands: Commands) -> Condition | None:
    """Is the report for the workflow version every stack of the release declares? None when none were given."""
    if not workflow_versions:
        return None
    version = report.get("workflow_version")
    other = {name: v for name, v in workflow_versions.items() if v != version}
    by_version: dict[str, list[str]] = {}
    for name, v in other.items():
        by_version.setdefault(v, []).append(name)
    where = (" and ".join(f"stacks/Pulumi.{s}.yaml (goldgate:spec: workflow_version)" for s in workflow_versions)
             if commands.target == "cloud" else
             "stacks/local.yaml (" + ", ".join(f"stacks: {s}: workflow_version" for s in workflow_versions)
             + "; a running stack reads it at its start: `goldgate down <stack> && goldgate up <stack>`)")
    return _cond("report_workflow_version", not other,
                 f"report is for workflow version {version!r}"
                 + "".join(f", but {' and '.join(stacks)} declare{'s' if len(stacks) == 1 else ''} {v!r}"
                           for v, stacks in by_version.items())
                 + (f": set workflow_version alike in {where}, then run `{commands.golden(stack)}`" if other else ""))


def _mean_latency(report: Mapping[str, Any], thresholds: Thresholds) -> Condition:
    latency = report.get("latency_s")
    mean = latency.get("mean") if isinstance(latency, Mapping) else None
    ok_mean = isinstance(mean, int | float) and mean <= thresholds.golden_mean_latency_s
    return _cond("mean_latency", ok_mean,
                 f"mean latency {mean} s (max {thresholds.golden_mean_latency_s:g} s)"
                 if isinstance(mean, int | float) else
                 f"no mean latency: no case of the run reached a final status (max "
                 f"{thresholds.golden_mean_latency_s:g} s)")


def _error_rate(report: Mapping[str, Any], error_rate: ErrorRate | None, thresholds: Thresholds,
                staging_image: str | None, stack: str, commands: Commands) -> Condition:
    """Is STAGING's error rate since its image was deployed within the threshold, with jobs to judge it by?"""
    if error_rate is None:
        return _cond("error_rate", False, "STAGING's error rate could not be read")
    if error_rate.jobs <= 0:
        # The golden run's own jobs fall in the window: none at all means the metrics are not there to judge.
        return _cond("error_rate", False, f"no STAGING jobs recorded since {error_rate.since} (when STAGING's image "
                                          "was deployed), not even a golden run's: the error rate has no evidence; "
                                          f"run `{commands.golden(stack)}` on the image it runs now (if one ran since, "
                                          "STAGING's job_metrics are not being written)")
    ok_rate = error_rate.rate <= thresholds.error_rate
    on = commands.on
    # A job a host restart left (a local RunPod's jobs in flight end with it), recovered failed "RunPod has no
    # record of job ...", keeps the image's tag and counts here until a deploy opens a new window.
    return _cond("error_rate", ok_rate,
                 f"{error_rate.failed} of {error_rate.jobs} STAGING jobs failed since {error_rate.since} "
                 f"({error_rate.rate:.1%}, max {thresholds.error_rate:.1%})" + ("" if ok_rate else
                 f": `goldgate metrics {stack}{on}` and each job's error say why; when the cause was not the image "
                 "(jobs a host restart left, recovered failed \"RunPod has no record of job ...\"), a deploy of the same "
                 f"image opens a new window: `goldgate deploy {stack}{on} --image "
                 f"{staging_image or '<the image it runs>'}`, then `{commands.golden(stack)}`"))


def _named_cases(record: Mapping[str, Any]) -> str | None:
    """"2 cases" when the report or ledger entry `record` is of a run of the cases `golden --case` named
    (`only_cases`), else None."""
    only = record.get("only_cases")
    if only is None:
        return None
    count = len(only) if isinstance(only, list) else 0
    return f"{count} case{'' if count == 1 else 's'}" if count else "some cases"


def _ran_the_suite(recorded: Mapping[str, Any], definitions: Mapping[str, str], suite_dir: str,
                   stack: str, commands: Commands) -> tuple[bool, str]:
    """(passed, detail): did the golden run recorded as `recorded` run every case of the promotion's suite, each as
    that suite defines it?"""
    run = f"golden run #{recorded.get('seq')}"
    again = f"run `{commands.golden(stack)}` over every case of it"
    ran = recorded.get("suite_cases")
    if not isinstance(ran, Mapping):
        return False, (f"{run} did not record which cases it ran (an older goldgate recorded it), so it cannot vouch "
                       f"for the {len(definitions)} cases of {suite_dir}: {again}")
    missing = sorted(set(definitions) - set(ran))
    if missing:
        return False, (f"{run} ran {len(definitions) - len(missing)} of the {len(definitions)} cases of {suite_dir} "
                       f"(missing: {_few(missing)}): a run over other cases is not the golden suite; {again}")
    differ = sorted(case for case, sha in definitions.items() if ran.get(case) != sha)
    if differ:
        return False, (f"{run} ran {_few(differ)} as other definitions than {suite_dir} holds (a case edited since "
                       f"the run, or a run from another --cases-dir): {again}")
    every = "the 1 case" if len(definitions) == 1 else f"all {len(definitions)} cases"
    return True, f"{run} ran {every} of {suite_dir}"


def _workflows_covered(workflows: Mapping[str, Any], stack: str, commands: Commands) -> tuple[bool, str]:
    """(passed, detail): did the run that wrote the report run a case of every workflow its stack served?"""
    served, uncovered = workflows.get("served"), workflows.get("uncovered")
    if not isinstance(served, list) or not isinstance(uncovered, list):
        return False, (f"the golden run could not read the workflows {stack} serves ({str(workflows.get('error'))[:200]}"
                       f"), so nothing shows a case ran each of them: run `{commands.golden(stack)}` again")
    if uncovered:
        return False, (f"{stack} serves {len(uncovered)} workflow{'' if len(uncovered) == 1 else 's'} no golden case "
                       f"ran ({_few([str(w) for w in uncovered])}), which would reach PROD untested: add a case for "
                       f"each ({ADD_A_CASE}) with its reference, commit them, then run `{commands.golden(stack)}`")
    return True, f"a golden case ran each of the {len(served)} workflows {stack} serves"


def suite_side_only(report: Mapping[str, Any], failures: list[Any]) -> str | None:
    """What to add to the suite, when every failure of a failed full report lies there rather than in the image: a
    workflow no case runs, a case whose reference this target lacks (the first run on a target), the served workflows
    that could not be read (a run again reads them). None otherwise."""
    if report.get("passed") is not False or not failures:
        return None
    workflows = report.get("workflows")
    uncovered = workflows.get("uncovered") if isinstance(workflows, Mapping) else None
    unread = isinstance(workflows, Mapping) and not isinstance(uncovered, list)  # GET /api/workflows failed
    missing, lines = [], len(uncovered) if isinstance(uncovered, list) else int(unread)
    cases = report.get("cases")
    for case in cases if isinstance(cases, list) else []:
        checks = case.get("checks") if isinstance(case, Mapping) else None
        failed = [c for c in checks if isinstance(c, Mapping) and c.get("passed") is not True] \
            if isinstance(checks, list) else []
        if failed and all(c.get("name") == "perceptual_hash" and str(c.get("detail")).startswith("no reference image")
                          for c in failed):
            missing.append(str(case.get("id")))
            lines += len(failed)
    if lines != len(failures):
        return None
    todo = [f"add a case for {_few([str(w) for w in uncovered])} (report_workflows_covered)"] if uncovered else []
    if unread:
        todo.append("let the stack answer GET /api/workflows (report_workflows_covered)")
    if missing:
        todo.append(f"create the missing reference of {_few(missing)} and commit it (report_references_match)")
    return " and ".join(todo)


def _failures(failures: list[Any]) -> str:
    """The first three failures of a report, and how many more it holds."""
    more = f"; and {len(failures) - 3} more in the report" if len(failures) > 3 else ""
    return "; ".join(map(str, failures[:3])) + more


def _few(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def aware_time(stamp: Any) -> datetime | None:
    """An ISO timestamp with a zone (a ledger entry's or a pin's) as a time; None for anything else."""
    if not isinstance(stamp, str):
        return None
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def age_s(stamp: Any, now: datetime) -> float | None:
    """Seconds from an ISO timestamp with a zone to `now` (negative: in the future); None for anything else."""
    when = aware_time(stamp)
    return None if when is None else (now - when).total_seconds()


def _references_match(report: dict[str, Any], references: Mapping[str, str | None], stack: str,
                      references_dir: str | None = None,
                      references_git: Callable[[Path, Collection[str]], Mapping[str, str] | None] | None = None,
                      commands: Commands | None = None) -> tuple[bool, str]:
    """(passed, detail): did the report's run compare each render with the reference the gate's checkout holds?"""
    commands = commands or Commands("cloud" if report.get("target") == "cloud" else "local")
    target = commands.target
    # The directory given (--references-dir) goes into each command: without it, `golden` reads and writes the
    # checkout's own references/<target>, not the directory this gate read. The other paths given go too.
    own = references_dir if references_dir and references_dir != _target_references(target, None) else None
    given = (f" --references-dir {shlex.quote(own)}" if own else "") + commands.paths(references=False)

    def golden(options: str = "") -> str:
        return f"goldgate golden {stack}{options}{commands.on}{given}"

    again = (f"run `{golden()}` against the references in {own}" if own
             else f"run `{golden()}` against the committed references")
    recorded = report.get("references")
    compared = recorded.get("sha256") if isinstance(recorded, Mapping) else None
    if not isinstance(compared, Mapping):
        return False, f"the report does not say which references it compared with (an older goldgate wrote it): {again}"
    differ = sorted(name for name, sha in references.items() if sha is None or compared.get(name) != sha)
    if not differ:
        # Committed, or only present? A file untracked or edited in this checkout opens this checkout's gate, and is
        # not what a clone or CI's checkout holds: `promote --check` called it committed all the same.
        if references_dir is None or references_git is None:   # not told where they were read from
            return True, f"the report compared with the {len(references)} reference images of this checkout"
        held = references_dir
        try:
            states = references_git(Path(held) if Path(held).is_absolute() else REPO_ROOT / held, list(references))
        except GitUnreadable as exc:   # in a checkout git will not read: "not known" is no pass
            return False, f"{exc}, then run `{commands.promote()}` again (the golden report stands)"
        if states is None:
            return True, f"the report compared with the {len(references)} reference images in the checkout ({held})"
        if not states:
            return True, f"the report compared with the {len(references)} committed reference images"
        shown = _few([f"{name} ({state})" for name, state in sorted(states.items())])
        return False, (f"the report compared with the checkout's reference images, but git does not hold "
                       f"{len(states)} of the {len(references)} as committed: {shown}; look at "
                       f"{'it' if len(states) == 1 else 'each'}, commit {held} (a change of its own: CI's checkout "
                       f"holds only what is committed), then run `{golden()}`")
    # Three causes, three remedies: a reference the checkout lacks is created and committed; one the report compared
    # nothing with was not rendered in that run; only the rest were compared with another directory's files.
    absent = [name for name in differ if references[name] is None]
    unused = [name for name in differ if references[name] is not None and compared.get(name) is None]
    other = [name for name in differ if references[name] is not None and compared.get(name) is not None]
    where = recorded.get("dir") if isinstance(recorded, Mapping) else None
    told = []
    if other:
        told.append(f"the report compared {len(other)} of the {len(references)} reference images ({_few(other)}) "
                    f"with other files than this checkout holds (references dir {str(where)[:200]!r})")
    if unused:
        told.append(f"the report compared no render with {len(unused)} of the {len(references)} reference images "
                    f"({_few(unused)}): {'its case was' if len(unused) == 1 else 'their cases were'} not in that "
                    "run, or produced no image")
    if absent:
        told.append(f"this checkout holds no reference image for {len(absent)} of the {len(references)} "
                    f"({_few(absent)}) in {_target_references(target, references_dir)}: create "
                    f"{'it' if len(absent) == 1 else 'them'} with `{golden(' --update-references')}` (on the "
                    f"{target} target: each target has its own references), check by eye"
                    f"{'' if own else ' and commit'}")
    return False, f"{'; '.join(told)}; then {again}"


def _target_references(target: str, references_dir: str | None) -> str:
    """The references directory the gate read, as its advice names it: the one given, else the target's own."""
    if references_dir:
        return references_dir
    try:
        return shown_dir(references_for(REFERENCES_DIR, target))
    except GoldgateError:
        return shown_dir(REFERENCES_DIR)


def report_freshness(finished_at: Any, now: datetime, max_age_s: float, rerun: str,
                     subject: str = "report") -> tuple[bool, str]:
    """(fresh, detail) for the golden report `subject` finished at `finished_at`: the promotion gate and the
    checklist judge it alike. A report up to CLOCK_SKEW_S ahead of `now` is fresh; `rerun` makes a new one."""
    age = age_s(finished_at, now)
    if age is None:
        return False, f"{subject} has no readable finished_at ({str(finished_at)[:64]!r}); run {rerun}"
    if age < -CLOCK_SKEW_S:
        return False, (f"{subject} says it finished at {str(finished_at)[:64]}, {-age:.0f} s in the future (now "
                       f"{now.isoformat(timespec='seconds')}; more than the {CLOCK_SKEW_S} s of clock skew allowed), "
                       f"which `goldgate promote` refuses: check the clock of the machine that ran it and this one's, "
                       f"then run {rerun}")
    if age < 0:
        return True, (f"{subject} finished {-age:.0f} s in the future by this clock (within the {CLOCK_SKEW_S} s of "
                      f"clock skew allowed; max age {max_age_s} s)")
    if age > max_age_s:
        return False, f"{subject} finished {age:.0f} s ago (max {max_age_s} s): run {rerun}"
    return True, f"{subject} finished {age:.0f} s ago (max {max_age_s} s)"
