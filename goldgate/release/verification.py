"""A golden or smoke run on a stack, end to end: bind to the image the stack runs, run the cases
through the public API, write the report (+ HTML) and record it in the ledger."""

from __future__ import annotations

import contextlib
import shlex
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goldgate.errors import StateError
from goldgate.release.cases import (
    GOLDEN_DIR,
    INPUTS_DIR,
    REPO_ROOT,
    GitUnreadable,
    GoldenCase,
    load_cases,
    references_for,
    select_cases,
    shown_dir,
    suite_digests,
    uncommitted_references,
)
from goldgate.release.deployers.base import Deployer, Progress
from goldgate.release.golden import (
    REFERENCES_DIR,
    SpendLimitReached,
    SuiteTarget,
    api_client,
    run_suite,
    served_workflows,
)
from goldgate.release.ledger import Ledger
from goldgate.release.report import REPORTS_DIR, check_reports_dir, report_sha256, write_report
from goldgate.release.report_html import write_html


@dataclass(frozen=True)
class GoldenPaths:
    """Where cases, references and reports live (the repo's scripts/golden-tests by default). The default
    `references_dir` holds one directory per target: a run compares with, and `--update-references` writes,
    references/<its target> (cases.references_for); a directory given (`--references-dir`) is used as it is."""

    cases_dir: Path = GOLDEN_DIR / "cases"
    references_dir: Path = REFERENCES_DIR
    reports_dir: Path = REPORTS_DIR
    inputs_dir: Path = INPUTS_DIR  # the images cases send (`{file: <name>}`)


DEFAULT_PATHS = GoldenPaths()


class NothingRun(StateError):
    """A golden or smoke run that refused to start for a reason that is not the image's (the running stack is not
    the one its stacks file declares; a rollback's release serves none of the smoke cases' workflows), or that the
    stack stopped (at its daily spend limit): no case was judged, nothing was recorded (no report, no ledger entry),
    and it is no verdict on the digest. A promotion or rollback records it as `smoke_not_run`."""


class StackNotAsDeclared(NothingRun):
    """The running stack serves other settings than its stacks file declares (it read the file at its start)."""


class StackAtSpendLimit(NothingRun):
    """The stack answered a case's create 429 spend_limit_reached (its api.daily_spend_limit_usd reached): the cases
    already created ran to their end, no other was sent, and no report was written. Such a run says nothing of the
    image: a report failing it would blame the image on STAGING, a failed smoke run would roll PROD back from it."""


def check_runs_as_declared(deployer: Deployer, stack: str, doing: str) -> None:
    """Refuse, before anything is built, deployed or recorded, a stack whose golden and smoke runs would refuse to
    run (`StackNotAsDeclared`); `doing` starts the sentence ("cannot promote to prod"). A deployer whose deploy
    applies the stacks file (the cloud's `pulumi up`) has nothing to check."""
    problem = getattr(deployer, "not_as_declared", None)
    why = problem(stack) if callable(problem) else None
    if why:
        raise StackNotAsDeclared(f"{doing}: {why}; nothing was changed")


@dataclass(frozen=True)
class GoldenRun:
    report: dict[str, Any]
    path: Path
    html_path: Path
    sha256: str

    @property
    def passed(self) -> bool:
        return self.report.get("passed") is True


def run_golden(deployer: Deployer, stack: str, ledger: Ledger, *, suite: str = "full",
               paths: GoldenPaths = DEFAULT_PATHS, update_references: bool = False, trigger: str = "user",
               progress: Progress = lambda _m: None, concurrency: int = 8, poll_s: float = 0.25,
               served_only: bool = False, only: Collection[str] = (),
               accept_changed: Collection[str] = ()) -> GoldenRun:
    """`served_only` (a rollback's smoke run): run only the cases whose workflow the stack serves now (its
    GET /api/workflows, read once the run holds the stack), say which were left out and why, and raise NothingRun
    when none is left: a release older than a smoke case's workflow is not failed by that case, nor verified
    without any. `only` (`golden --case`): run those cases of the suite alone; such a run is not the suite (it does
    not check that a case runs each served workflow, and never becomes latest.json). `accept_changed`: see
    golden.run_suite."""
    spec = deployer.spec(stack)
    cases = load_cases(paths.cases_dir, smoke_only=(suite == "smoke"),
                       stack_latency_s=spec.thresholds.golden_case_latency_s, inputs_dir=paths.inputs_dir)
    of_suite = len(cases)
    if only:
        cases = select_cases(cases, only, shown_dir(paths.cases_dir), smoke=suite == "smoke")
    check_reports_dir(paths.reports_dir)  # a read-only checkout is found out before any case runs
    access = deployer.api_access(stack)
    image = deployer.current_image(stack)
    progress(f"{ran_what(suite, stack, len(cases), of_suite if only else None)} against {access.api_url} "
             f"(image {image})")
    target = SuiteTarget(stack=stack, target=deployer.target, image=image,
                         workflow_version=spec.workflow_version, thresholds=spec.thresholds)
    # The deployer's hold (a golden run and a deploy of one stack exclude each other) is taken here rather than by
    # run_suite, so it covers the report and its ledger entry too: a deploy that slipped in between the last case
    # and the ledger write would order the ledger as if the run had followed it.
    hold = access.hold(image, suite) if access.hold else contextlib.nullcontext()
    with hold:
        skipped: dict[str, str] = {}
        if served_only:
            cases, skipped = _served_cases(cases, access, stack, image, progress)
        try:
            report = run_suite(cases, access, target, suite=suite,
                               references_dir=paths.references_dir, update_references=update_references,
                               concurrency=concurrency, poll_s=poll_s, progress=progress,
                               image_now=lambda: deployer.current_image(stack), cover_workflows=not only,
                               accept_changed=accept_changed, reports_dir=paths.reports_dir)
            if only:
                report["only_cases"] = [case.id for case in cases]
        except SpendLimitReached as exc:
            # No report and no ledger entry, as for the other runs that judged nothing: latest.json (the gate's
            # evidence) stays as it was, and no failed run of the image is recorded against it.
            raise StackAtSpendLimit(str(exc)) from None
        except KeyboardInterrupt:
            # What an operator who pressed Ctrl-C needs to know: the gate's evidence is untouched, and nothing
            # cancels the jobs RunPod already has (they finish, and are billed, on their own).
            progress(f"interrupted: no report written ({paths.reports_dir / 'latest.json'} is as it was); the jobs "
                     f"already queued on {stack} run on to their end"
                     + ("; the references rewritten before it (the lines above) stay rewritten" if update_references
                        else ""))
            raise
        # Only a full, ordinary run on STAGING may become latest.json: that file is what the promotion gate reads, and
        # a run on PROD (or any other stack) would put a report there that the gate must refuse (`report_stack`).
        latest = suite == "full" and not update_references and spec.role == "staging" and not only
        path = write_report(report, paths.reports_dir, latest=latest)
        html = write_html(report, path)
        if latest:
            write_html(report, paths.reports_dir / "latest.json")
        sha = report_sha256(path)
        lat = report["latency_s"]
        # `suite_cases`: which cases ran, each as the digest of its definition, so that the gate opens only for a
        # run over the very suite the promotion names (not a subset, nor a copy with a limit loosened).
        ledger.append("golden", stack=stack, target=deployer.target, image=image, suite=suite,
                      passed=report["passed"], report=str(path), report_sha256=sha, cases=len(cases),
                      cases_dir=shown_dir(paths.cases_dir), suite_cases=suite_digests(cases),
                      mean_latency_s=lat["mean"], p95_latency_s=lat["p95"], wall_time_s=report["wall_time_s"],
                      references_updated=update_references, trigger=trigger, role=spec.role,
                      failures=report["failures"][:20], **({"skipped_cases": skipped} if skipped else {}),
                      **({"only_cases": report["only_cases"]} if only else {}))
    # Said of the runs whose report a promotion gates on: one that rewrote the references is told to commit them by
    # its own banner, and PROD's smoke runs are no evidence for the gate.
    if not update_references and spec.role != "prod":
        for line in uncommitted_warnings(report, references_for(paths.references_dir, deployer.target), stack):
            progress(line)
    return GoldenRun(report=report, path=path, html_path=html, sha256=sha)


def uncommitted_warnings(report: dict[str, Any], references_dir: Path, stack: str) -> list[str]:
    """A warning line for each reference image the run compared with that git does not hold as committed (untracked,
    or modified since its commit). The run stands (it compared with what is on disk), but `promote` refuses its report
    for it, and a CI checkout has no such file: said here, when the file is at hand, rather than only at the gate.
    Nothing outside a git checkout (an unpacked tarball); git unable to say is one line, as the gate will say it."""
    compared = report.get("references")
    names = sorted(compared.get("sha256") or {}) if isinstance(compared, dict) else []
    if not names:
        return []
    try:
        states = uncommitted_references(references_dir, names)
    except GitUnreadable as exc:
        return [f"warning: {exc}"]
    lines = []
    for name, state in sorted((states or {}).items()):
        where = references_dir / name
        inside = where.resolve().is_relative_to(REPO_ROOT)
        add = (f"git add {shlex.quote(shown_dir(where))}" if inside else
               f"git -C {shlex.quote(str(references_dir))} add {shlex.quote(name)}")
        lines.append(f"warning: reference {shown_dir(where)} is {state} in git: this run on {stack} compared with it as "
                     f"it is on disk, but `goldgate promote` refuses a report whose references are not committed (a "
                     f"CI checkout holds only what is): look at it, then `{add}` and commit it"
                     + (", or put back the committed one and run again" if state != "untracked" else ""))
    return lines


def ran_what(suite: str, stack: str, cases: int, of_suite: int | None = None) -> str:
    """What a golden run runs, as its first line says it: "full suite on staging: 6 case(s)", or, for the cases
    `golden --case` names (`of_suite`: how many cases the suite holds), "1 case named with --case on staging, of the
    full suite's 6 (...)": "full suite on staging: 1 case(s)" read as the very run the promotion gate asks for."""
    if of_suite is None:
        return f"{suite} suite on {stack}: {cases} case(s)"
    smoke = " smoke" if suite == "smoke" else ""
    return (f"{cases}{smoke} case{'' if cases == 1 else 's'} named with --case on {stack}, of the {suite} suite's "
            f"{of_suite} (not the suite: its report never becomes latest.json nor opens the promotion gate)")


def _served_cases(cases: list[GoldenCase], access: Any, stack: str, image: str | None,
                  progress: Progress) -> tuple[list[GoldenCase], dict[str, str]]:
    """The cases whose workflow `stack` serves (GET /api/workflows, read as a full golden run reads it), and each case
    left out with why. A list that cannot be read leaves every case in (each one then fails on its own if its workflow
    is missing), and says so."""
    with api_client(access) as client:
        served, why = served_workflows(client, threading.Event())
    if served is None:
        progress(f"could not read the workflows {stack} serves (GET /api/workflows: {why}): running every smoke case")
        return cases, {}
    kept = [case for case in cases if case.workflow in served]
    skipped = {case.id: f"{image} on {stack} serves no workflow {case.workflow!r}" for case in cases
               if case.workflow not in served}
    for case_id, why in skipped.items():
        progress(f"smoke case {case_id} left out: {why} (a release from before that workflow)")
    if not kept:
        shown = ", ".join(sorted(str(w) for w in served)) or "none"
        raise NothingRun(f"none of the {len(cases)} smoke case(s) ran: the release serves none of their workflows "
                         f"({', '.join(sorted({c.workflow for c in cases}))}; it serves {shown}), and a rollback "
                         "without smoke evidence is not verified: add a `smoke: true` case for a workflow it serves, "
                         "or roll back to another release with --to")
    return kept, skipped
