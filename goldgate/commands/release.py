"""Release commands: build, deploy, golden, promote, rollback, history, release; and check-prod-file and
pins-onto-main, what CI's PROD jobs take from main's stack files and give back.

`goldgate release` is the whole flow on the local target: up STAGING and PROD, build the worker
image once, deploy it to STAGING, run the golden suite there, promote that exact digest to PROD
(gate, deploy, rollout, smoke), and print a summary. The other commands are its steps, and are what
CI calls (.github/workflows/release.yml) against the cloud target.
"""

from __future__ import annotations

import argparse
import binascii
import contextlib
import re
import shlex
import stat
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from goldgate import spec as specs
from goldgate.commands.output import emit, progress, table
from goldgate.commands.release_args import (
    HISTORY_SHOWN,
    not_a_digest_ref,
    register,  # noqa: F401 -- the area's subcommands, listed here too
)
from goldgate.errors import GoldgateError
from goldgate.local.state import write_text_atomic
from goldgate.logs import now_rfc3339
from goldgate.release import build as builds
from goldgate.release.cases import load_cases, references_for, shown_dir
from goldgate.release.deployers import Deployer, for_target
from goldgate.release.deployers.base import RolloutNotConfirmed
from goldgate.release.gate import PromotionRefused, suite_side_only
from goldgate.release.history import entry_target, interrupted, on_target
from goldgate.release.ledger import KEY_ENV, Ledger, detect_trigger
from goldgate.release.lock import ReleaseLock
from goldgate.release.main_pins import STACKS, check_prod_file, pins_onto_main, read_stack_file
from goldgate.release.promote import PromotionOutcome, check_gate, previewed, promote, smoke_at_limit
from goldgate.release.report import latency_words, read_report
from goldgate.release.rollback import host_code_note, prod_state_warning, rollback
from goldgate.release.spend_limit import AtSpendLimit, check_within_spend_limit, spend_limit_refusal
from goldgate.release.verification import GoldenPaths, GoldenRun, check_runs_as_declared, run_golden


def _home(args: argparse.Namespace) -> Path:
    if getattr(args, "home", None):
        return Path(args.home).resolve()
    from goldgate.local.state import default_home

    return default_home()


def _paths(args: argparse.Namespace) -> GoldenPaths:
    for option in ("cases_dir", "references_dir", "reports_dir"):
        given = getattr(args, option, None)
        if given and Path(given).exists() and not Path(given).is_dir():  # before any case runs or stack starts
            raise GoldgateError(f"--{option.replace('_', '-')} {given} is not a directory")
    base = GoldenPaths()
    return GoldenPaths(cases_dir=Path(args.cases_dir) if args.cases_dir else base.cases_dir,
                       references_dir=Path(args.references_dir) if args.references_dir else base.references_dir,
                       reports_dir=Path(args.reports_dir) if args.reports_dir else base.reports_dir)


def _deployer(args: argparse.Namespace) -> Deployer:
    return for_target(args.target, _home(args))


# A command named in advice carries what it needs to run as written: the target (without it, the local one runs),
# and the golden paths this one was given (another directory's report, cases or references is another run).
def _on(target: str | None) -> str:
    return "" if target in (None, "local") else f" --target {target}"


def _given_paths(args: argparse.Namespace, options: tuple[str, ...] = ("cases_dir", "references_dir",
                                                                       "reports_dir")) -> str:
    return "".join(f" --{option.replace('_', '-')} {shlex.quote(str(getattr(args, option)))}"
                   for option in options if getattr(args, option, None))


def _release_again(args: argparse.Namespace) -> str:
    """`goldgate release` as this one was run, but for the options that change nothing (--json, --trigger,
    --concurrency): a cloud release needs its --target and --repo, and other stacks their names."""
    defaults = {"context": str(builds.WORKER_DIR), "dockerfile": "Dockerfile", "staging": "staging", "prod": "prod",
                "engine": "docker" if args.repo else "local"}   # the engine --repo implies goes without saying
    given = "".join(f" --{option.replace('_', '-')} {shlex.quote(str(getattr(args, option)))}"
                    for option in ("repo", "engine", "context", "dockerfile", "workflow_version", "staging", "prod")
                    if getattr(args, option, None) and getattr(args, option) != defaults.get(option))
    return f"goldgate release{_on(args.target)}{given}{_given_paths(args)}"


# -- build -------------------------------------------------------------------------------------

def _workflow_version(args: argparse.Namespace) -> str:
    if args.workflow_version:
        return args.workflow_version
    if args.target == "cloud":
        return specs.load_pulumi("staging").workflow_version
    return specs.load_local("staging").workflow_version


def _engine(args: argparse.Namespace) -> str:
    engine = args.engine or ("docker" if args.repo else "local")
    if engine == "local" and args.repo:
        raise GoldgateError(f"--engine local builds a snapshot on this machine and pushes nothing: drop --repo "
                            f"{args.repo}, or build with docker to push it there")
    if engine == "local" and args.target == "cloud":
        raise GoldgateError("the cloud target needs an image RunPod can pull: build with docker and push it, "
                            "--repo <registry>/<repository> (a local snapshot exists only on this machine)")
    return engine


def _check_build(args: argparse.Namespace) -> tuple[str, Path, builds.ReleaseIdentity]:
    """Everything about a build that can be refused without building: the engine and target, the context, and for
    docker the repository name, the Dockerfile and the tag. Returns (engine, context, identity)."""
    engine = _engine(args)
    context = Path(args.context).resolve()
    if not context.is_dir():
        raise GoldgateError(f"build context {context} is not a directory")
    identity = builds.identity_for(context, _workflow_version(args))
    if engine == "docker":
        if not args.repo:
            raise GoldgateError("--repo is required to build with docker (e.g. 127.0.0.1:5000/goldgate-worker)")
        builds.check_repo(args.repo)
        builds.check_dockerfile(context, args.dockerfile)
    _ = identity.tag   # refuses a workflow_version that makes no valid tag
    return engine, context, identity


_MAX_DOCKERFILE_BYTES = 1024 * 1024


def _warn_unbaked_models(context: Path, dockerfile: str) -> None:
    """The local snapshot bakes what models.yaml lists, the cloud image what the Dockerfile fetches: a model in one
    alone passes every local golden run and ships a cloud image without it. Said at the build, where it is made
    (the checklist fails on it later); not refused, since a Dockerfile may bake a model in a shape the check does
    not read."""
    from goldgate.ops.checklist_facts import dockerfile_problems
    from images.worker.manifest import ManifestError, load_manifest

    path = context / dockerfile
    try:   # a regular file of a Dockerfile's size only: a FIFO in its place would block the build for ever
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_DOCKERFILE_BYTES:
            return
        problems = dockerfile_problems(path, load_manifest(context / "models.yaml"))
    except (OSError, UnicodeDecodeError, ManifestError):
        return   # no Dockerfile or manifest to compare: the build itself says what it needs
    for problem in problems:
        progress(f"warning: {problem} (the cloud image is built from the Dockerfile; docs/RUNBOOK.md, "
                 "\"Add a model to the worker image\")")


def _warn_workflows(context: Path, local: bool) -> None:
    """Warnings about the workflows, read once, before the build; none is a refusal, but a workflow file the worker
    refuses in the context's workflows/ is refused here, for every engine: a docker build never reads the files, and
    its worker would fail at start on every GPU (the local build refuses it too, in its store).
    - Each parameter that contradicts the ComfyUI input it sets (its type, min/max, choices, an input the node
      type lacks) or lets a client send what that input refuses (no min/max on a bounded input, no choices on
      a COMBO), as the emulator's spec of that core node type has it: ComfyUI refuses such a job only when
      it runs. Every engine: the cloud image runs the same core nodes, though a real one may be newer.
    - `local`: each workflow with a node type the local ComfyUI emulator does not run: its jobs, so its golden
      cases, fail on every local stack (a real ComfyUI may well have the node).
    - Each optional parameter whose default is not the graph literal it replaces: every job that leaves it out gets
      the default, so an edit of that literal (a graph re-exported from ComfyUI) changes nothing.
    A graph with no node that saves an image is refused, for every engine: ComfyUI refuses a prompt with no output
    node (`Prompt has no outputs`), and the worker uploads only the images a node saves as ComfyUI outputs
    (SaveImage), so every job of it would fail. Only a graph made of node types known here is refused: a custom
    node may save an image (said, not refused)."""
    from goldgate.local.comfyui.backend import NODE_TYPES
    from goldgate.local.comfyui.params import parameter_problems
    from goldgate.local.comfyui.stand_ins import custom_node_types
    from images.worker.workflows import WorkflowError, load_workflows

    if not (context / "workflows").is_dir():
        return   # nothing to read: the local build refuses it, and a Dockerfile may take its workflows from elsewhere
    try:
        workflows = load_workflows(context / "workflows")
    except WorkflowError as exc:
        raise GoldgateError(f"cannot build a worker image from {context}: {exc}") from None
    for workflow in workflows.values():
        _check_saves_an_image(workflow, context, NODE_TYPES.keys())
        _check_link_types(workflow, context, NODE_TYPES)
        for param in workflow.parameters:
            literal = workflow.graph[param.node]["inputs"][param.input]
            # Values of one kind only (7 and 7.0 agree): a default of another type than the input's is said by
            # parameter_problems below.
            if not param.required and _same_kind(literal, param.default) and literal != param.default:
                progress(f"warning: workflow {workflow.id} parameter {param.name!r} defaults to "
                         f"{_shown_value(param.default)}, but the graph's node {param.node} input {param.input!r} "
                         f"holds {_shown_value(literal)}: every job that leaves {param.name} out runs with "
                         f"{_shown_value(param.default)}, whatever the graph says (a re-export from ComfyUI changes "
                         "nothing there); make the two agree")
        for problem in parameter_problems(workflow):
            progress(f"warning: {problem} (ComfyUI checks node inputs only when a job runs; its spec here: "
                     "NODE_TYPES in goldgate/local/comfyui/backend.py)")
        # A custom node type with an `emulate:` stand-in in custom_nodes.yaml runs on a local stack too.
        emulated = NODE_TYPES.keys() | custom_node_types(context / "custom_nodes.yaml").stand_ins.keys()
        missing = sorted({str(node.get("class_type")) for node in workflow.graph.values()} - emulated)
        if local and missing:
            progress(f"warning: workflow {workflow.id} uses node types the local ComfyUI emulator does not run "
                     f"({', '.join(missing)}): its jobs and golden cases fail on a local stack; test it on a "
                     "cloud STAGING stack (--target cloud), or emulate them (\"Add a workflow\" in "
                     "images/worker/README.md)")


# The node types whose images the worker collects (ComfyUI's `outputs` of type "output", PNG: comfy_client.py,
# handler.py), and the core output node that saves none of them (its images are "temp").
_SAVES_IMAGES = frozenset({"SaveImage"})
_SAVES_NONE = frozenset({"PreviewImage"})


def _check_saves_an_image(workflow: Any, context: Path, known: Any) -> None:
    types = {str(node.get("class_type")) for node in workflow.graph.values()}
    if types & _SAVES_IMAGES:
        return
    custom = sorted(types - set(known) - _SAVES_NONE)
    where = workflow.path or context / "workflows" / f"{workflow.id}.json"
    if custom:
        progress(f"warning: workflow {workflow.id} has no SaveImage node: its jobs succeed only if one of its "
                 f"custom nodes ({', '.join(custom)}) saves a PNG as a ComfyUI output, the only images the worker "
                 "uploads")
        return
    preview = " (PreviewImage keeps its images as temporary files, which the worker does not upload)" \
        if types & _SAVES_NONE else ""
    # Kept short: the CLI cuts an error line over 600 characters in the middle, and the path may be long.
    raise GoldgateError(f"workflow {workflow.id} ({where}) has no node that saves an image{preview}: every job of it "
                        "would fail (`Prompt has no outputs`, or no image saved); end its graph in a SaveImage node "
                        "fed by the decoded image (\"Add a workflow\", images/worker/README.md); nothing was built")


def _check_link_types(workflow: Any, context: Path, node_types: Any) -> None:
    """Refuse a graph with a link between core nodes whose types differ (VAEDecode's `vae` fed CheckpointLoader's
    CLIP): ComfyUI refuses every job of it at validation ("Return type mismatch between linked nodes"), so the image
    would ship a workflow no job can run. A refusal, not a warning as a parameter's spec is: a core node's output and
    input types do not change between ComfyUI versions (only new inputs come), and a custom node is not judged."""
    found = builds.link_type_mismatches(workflow.graph, node_types)
    if not found:
        return
    where = workflow.path or context / "workflows" / f"{workflow.id}.json"
    more = f" (and {len(found) - 2} more)" if len(found) > 2 else ""
    # Kept short: the CLI cuts an error line over 600 characters in the middle.
    raise GoldgateError(f"workflow {workflow.id} ({where}): {'; '.join(found[:2])}{more}: ComfyUI refuses every job of "
                        "it (\"Return type mismatch between linked nodes\"); link each input to an output of its type; "
                        "nothing was built")


def _same_kind(a: Any, b: Any) -> bool:
    def kind(v: Any) -> str:
        return "bool" if isinstance(v, bool) else "number" if isinstance(v, int | float) else type(v).__name__
    return kind(a) == kind(b)


def _shown_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def do_build(args: argparse.Namespace, ledger: Ledger) -> builds.BuildResult:
    engine, context, identity = _check_build(args)
    _warn_unbaked_models(context, args.dockerfile)
    _warn_workflows(context, local=engine != "docker")
    for line in builds.reused_workflow_versions(context, _home(args), args.target):
        progress(f"warning: {line}")
    if engine == "docker":
        try:
            import docker

            client = docker.from_env()
            client.ping()
        except Exception as exc:  # noqa: BLE001 -- any failure to reach the engine is one actionable message
            raise GoldgateError(f"cannot reach a Docker engine ({type(exc).__name__}: {exc}); "
                                + _no_engine_advice(args)) from None
        result = builds.build_docker(client, context, args.repo, identity, dockerfile=args.dockerfile,
                                     progress=progress)
    else:
        for line in builds.unlocked_custom_nodes(context):   # the docker build says so in its own log
            progress(f"warning: {line}")
        progress(f"snapshotting {context} into the local image store")
        result = builds.build_local(context, _home(args), identity)
    ledger.append("build", **result.to_dict(), trigger=detect_trigger(args.trigger))
    return result


def _no_engine_advice(args: argparse.Namespace) -> str:
    """What to do when the docker build finds no engine, for the target in use: `--engine local` (the advice for
    every target once) is refused on the cloud target, whose stacks need an image pushed where RunPod pulls it."""
    if args.target == "cloud":
        return (f"start it, or set DOCKER_HOST to one, then run this again: the cloud target needs the image pushed "
                f"to {args.repo} for RunPod to pull (a local snapshot exists only on this machine)")
    return ("start it or set DOCKER_HOST to one; or, for the local target, build a local snapshot instead: drop "
            "--repo" + (" and --engine docker" if args.engine == "docker" else ""))


def cmd_build(args: argparse.Namespace) -> int:
    result = do_build(args, Ledger(_home(args)))
    emit(args, result.to_dict(), lambda d: d["image"])
    return 0


# -- deploy ------------------------------------------------------------------------------------

def do_deploy(deployer: Deployer, ledger: Ledger, stack: str, image: str, trigger: str,
              say_host_code: bool = False) -> dict[str, Any]:
    """`say_host_code`: warn when the local stack's host runs older goldgate code than this checkout (`release` has
    said so as it brought the stack up)."""
    role = deployer.spec(stack).role
    if role == "prod":
        on = _on(getattr(deployer, "target", None))
        raise GoldgateError(f"{stack} is a PROD stack: it takes an image only through `goldgate promote{on}` "
                            f"(after the golden gate) or `goldgate rollback{on}`")
    if not specs.is_digest_ref(image):  # the command line's --image is refused as it is parsed; a caller's is here
        raise GoldgateError(not_a_digest_ref(image))
    note = host_code_note(deployer, stack, "this deploy") if say_host_code else None
    if note is not None:
        progress(f"warning: {note}")
    # The entry is written once the rollout is confirmed; the image's first workers start during the rollout, so
    # their start-up lines (`models_loaded`: goldgate checklist's startup_log) are counted from this moment.
    started_at = now_rfc3339()
    try:
        result = deployer.deploy(stack, image, progress)
    except RolloutNotConfirmed as exc:
        # The stack took the image and may serve it already: recorded as such, or the ledger would say it runs the
        # image before, and the next gate, pin move or error-rate window would reason from that.
        entry = ledger.append("deploy", **exc.result.to_dict(), image=image, rollout_confirmed=False,
                              error=str(exc), trigger=trigger, started_at=started_at)
        raise GoldgateError(f"{exc} (ledger #{entry.seq} records {stack} on it, its rollout not confirmed)") from None
    ledger.append("deploy", **result.to_dict(), image=image, trigger=trigger, started_at=started_at)
    return result.to_dict()


def cmd_deploy(args: argparse.Namespace) -> int:
    data = do_deploy(_deployer(args), Ledger(_home(args)), args.stack, args.image, detect_trigger(args.trigger),
                     say_host_code=True)
    emit(args, data, lambda d: f"{d['stack']}: {d['before'] or '(nothing)'} -> {d['after']}")
    return 0


# -- golden ------------------------------------------------------------------------------------

def _render_golden(report: dict[str, Any], cases_dir: Path | None = None, given: str = "") -> str:
    """`given`: the options the run was given that its next run needs too (the golden paths)."""
    rows = [{"case": c["id"], "result": "pass" if c["passed"] else "FAIL", "latency_s": c["latency_s"],
             "failed checks": ", ".join(x["name"] for x in c["checks"] if not x["passed"]) or "-"}
            for c in report["cases"]]
    cases, passed = len(report["cases"]), sum(c["passed"] is True for c in report["cases"])
    verdict = "PASSED" if report["passed"] else \
        f"FAILED ({passed} of {cases} case{'' if cases == 1 else 's'} passed{_beyond_cases(report)})"
    lines = [table(rows, ["case", "result", "latency_s", "failed checks"]), "",
             f"{_ran(report, cases_dir)} on {report['stack']} ({report['image']}): {verdict}",
             latency_words(report["latency_s"], cases, report["wall_time_s"], report["sum_latency_s"])]
    lines += [f"  failure: {f}" for f in report["failures"]]
    if report.get("references_updated"):  # its PASSED compared each render with itself: say what comes next
        lines.append(_references_written(report, given))
    return "\n".join(lines)


def _references_written(report: dict[str, Any], given: str = "") -> str:
    """What an `--update-references` run wrote, counted from its cases' `reference_updated` checks (the run's mode
    alone said "rewritten" of a run that wrote none), and what comes next."""
    checks = [x for c in report["cases"] for x in c["checks"] if x["name"] == "reference_updated"]
    wrote = sum(x["passed"] is True for x in checks)
    kept = len(checks) - wrote
    left = f"; {kept} left as {'it was' if kept == 1 else 'they were'} (the reference lines above say why)" \
        if kept else ""
    if not wrote:
        return f"no reference was written by this run{left}; the references are as they were"
    return (f"{wrote} reference{' was' if wrote == 1 else 's were'} written by this run{left}: look at each one "
            f"(the reference lines above), commit them on their own, then run `goldgate golden {report['stack']}"
            f"{_on(report.get('target'))}{given}`")


def _beyond_cases(report: dict[str, Any]) -> str:
    """What failed the run besides its cases (a served workflow no case runs, the mean latency, the image changing
    during the run): with every case passed, "7 of 7 cases passed" alone read as a pass."""
    return _failed_beyond(run_failures(report), all(c["passed"] is True for c in report["cases"]))


def _failed_beyond(others: list[str], every_case_passed: bool) -> str:
    """With every case passed, the failures that failed the run, each shortened to its first words (the failure lines
    follow in full); with a case failed, nothing (its failures are listed, and "N of M passed" says it)."""
    if not others or not every_case_passed:
        return ""
    more = f"; and {len(others) - 2} more" if len(others) > 2 else ""
    return ", but the run failed: " + "; ".join(f.split(" (", 1)[0] for f in others[:2]) + more


def run_failures(report: dict[str, Any]) -> list[str]:
    """The failures of a golden report that are no case's: each case's are its failed checks."""
    of_cases = {f"{c['id']}: {x['name']}: {x['detail']}" for c in report["cases"] for x in c["checks"]
                if not x["passed"]}
    return [f for f in report["failures"] if f not in of_cases]


def _ran(report: dict[str, Any], cases_dir: Path | None) -> str:
    """What the run ran: the golden suite, or the cases of another directory (`--cases-dir`): "full suite" said of a
    directory holding one case read as the run the gate asks for."""
    cases = len(report["cases"])
    noun = f"case{'' if cases == 1 else 's'}"
    if report.get("only_cases"):  # `--case`: the cases named, never the suite the gate asks for
        return f"{cases}{' smoke' if report['suite'] == 'smoke' else ''} {noun} named with --case"
    if cases_dir is None or cases_dir.resolve() == GoldenPaths().cases_dir.resolve():
        return f"{report['suite']} suite ({cases} {noun})"
    smoke = " smoke" if report["suite"] == "smoke" else ""
    return f"{cases}{smoke} {noun} of {shown_dir(cases_dir)}"


def cmd_golden(args: argparse.Namespace) -> int:
    if args.accept_changed and not args.update_references:
        raise GoldgateError(f"--accept-changed {args.accept_changed[0]} goes with --update-references: it lets that "
                            "run replace the case's reference although its render CHANGED beyond the case's limits; "
                            "nothing was run")
    if args.update_references:
        progress("!!! --update-references: the images rendered now become the references every future golden "
                 "run is compared with. Do this only deliberately, after checking the images by eye, and "
                 "commit the new references/ in their own reviewed change. !!!")
    deployer = _deployer(args)
    # A run on PROD holds PROD still as a promotion or rollback does (their own smoke runs hold it already): one of
    # them meanwhile would change the image under its cases, and a failed smoke run recorded for PROD is the ledger's
    # verdict against its image, which the gate then refuses to promote.
    on_prod = deployer.spec(args.stack).role == "prod"
    with ReleaseLock(_home(args), f"golden {args.stack}", kind="golden",
                     again=f"goldgate golden {args.stack}{_on(args.target)}") if on_prod else nullcontext():
        run = run_golden(deployer, args.stack, Ledger(_home(args)), suite="smoke" if args.smoke else "full",
                         paths=_paths(args), update_references=args.update_references,
                         trigger=detect_trigger(args.trigger), progress=progress, concurrency=args.concurrency,
                         only=args.only_cases or (), accept_changed=args.accept_changed)
    progress(f"report: {run.path} (html: {run.html_path})")
    # The next run without --update-references, --case or --accept-changed: over the same paths.
    emit(args, run.report, lambda report: _render_golden(report, _paths(args).cases_dir, _given_paths(args)))
    return 0 if run.passed else 1


# -- promote / rollback ------------------------------------------------------------------------

def _render_promotion(d: dict[str, Any]) -> str:
    conditions = d["gate"]["conditions"]
    width = max([14, *(len(str(c["name"])) for c in conditions)])
    lines = [f"{c['name']:<{width}} {'ok' if c['passed'] else 'FAILED':<7} {c['detail']}" for c in conditions]
    return "\n".join(["gate:", *("  " + ln for ln in lines), d["message"]])


class _Printed:
    """Whether a command has printed its document yet (see _json_error)."""

    def __init__(self) -> None:
        self.done = False

    def emit(self, args: argparse.Namespace, data: Any, render: Any) -> None:
        emit(args, data, render)
        self.done = True


def _json_error(args: argparse.Namespace, exc: GoldgateError, printed: _Printed) -> None:
    """With --json, stdout holds one JSON document whatever happens: a command that fails before it has one to print
    (the ledger key unset, a lock held, a stack file unreadable) prints `{"ok": false, "error": {"code", "message"}}`
    (the service API's error shape), then fails as it would; CI's `promote --json | tee promotion.json` uploaded an
    empty file. One printed already (a refusal's gate, a failed outcome) is not followed by a second."""
    if getattr(args, "json", False) and not printed.done:
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
        emit(args, {"ok": False, "error": {"code": code, "message": str(exc)}}, str)


def cmd_promote(args: argparse.Namespace) -> int:
    out = _Printed()
    try:
        return _promote(args, out)
    except GoldgateError as exc:
        _json_error(args, exc, out)
        raise


def _promote(args: argparse.Namespace, out: _Printed) -> int:
    deployer, ledger, paths = _deployer(args), Ledger(_home(args)), _paths(args)
    report = Path(args.report) if args.report else paths.reports_dir / "latest.json"
    if args.report and report.is_dir():  # the reports directory named for its report: no report is "unreadable"
        raise GoldgateError(f"--report {args.report} is a directory; name the golden report file in it, e.g. "
                            f"{report / 'latest.json'}")
    if args.check:
        read_report(report, _on(args.target))  # unreadable: refused before the gate takes a lock (nothing written)
        # Judged on the ledger as the promotion will read it: after it closes any change left open (none written).
        # And refused as it would be while a golden run of STAGING writes the newest evidence (the local target).
        hold = getattr(deployer, "gate_hold", None)
        with hold("staging", check=True) if callable(hold) else contextlib.nullcontext():
            decision, _, _ = check_gate(deployer, previewed(deployer, ledger), report, expected_image=args.image,
                                        cases_dir=paths.cases_dir, references_dir=paths.references_dir,
                                        retry_rejected=args.retry_rejected)
        # The promotion refuses a PROD at its daily spend limit before it changes anything (its smoke run could not
        # run): said here too, or `--check` would pass a promotion that is refused the next moment.
        at_limit = spend_limit_refusal(deployer, "prod", progress, doing="promote to prod",
                                       because=smoke_at_limit("prod", decision.image))
        checked = {**decision.to_dict(), **({"refused": at_limit} if at_limit else {})}
        out.emit(args, checked, lambda d: _render_promotion({"gate": d, "message": (
            ("gate would pass" if d["passed"] else "gate would refuse")
            + (f"; and the promotion would be refused now: {d['refused']}" if d.get("refused") else ""))}))
        return 0 if decision.passed and at_limit is None else 1
    try:
        outcome = promote(deployer, ledger, _home(args), report_path=report, trigger=detect_trigger(args.trigger),
                          progress=progress, paths=paths, expected_image=args.image,
                          retry_rejected=args.retry_rejected)
    except PromotionRefused as exc:
        # The refusal is the promotion's evidence: as JSON, stdout stays one document; as text, the gate
        # table, as `--check` prints it. The error line alone is cut to one terminal line, and with several
        # conditions failed that cut took whole conditions out of it: the runbook looks them up by name.
        refused = {"outcome": "refused", "ok": False, "gate": exc.decision.to_dict(), "message": str(exc)}
        # PROD left on a release found broken there, or on a candidate no smoke run judged: "PROD unchanged" would
        # read as all being well.
        left = prod_state_warning(deployer, ledger, "prod")
        unchanged = "PROD unchanged" if left is None else f"PROD not changed by it, but {left}"
        out.emit(args, refused, lambda d: _render_promotion({"gate": d["gate"], "message": (
            f"promotion refused, {unchanged}: fix each FAILED condition above (docs/RUNBOOK.md, "
            "A failed promotion, says how)")}))
        raise
    out.emit(args, outcome.to_dict(), _render_promotion)
    if not outcome.ok:
        raise GoldgateError(outcome.message())
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    out = _Printed()
    try:
        ledger = Ledger(_home(args))
        outcome = rollback(_deployer(args), ledger, _home(args), to=args.to,
                           trigger=detect_trigger(args.trigger), progress=progress, paths=_paths(args))
    except GoldgateError as exc:
        _json_error(args, exc, out)
        raise
    emit(args, outcome.to_dict(), lambda d: _render_rollback(d, ledger.entries()))
    return 0


def _render_rollback(d: dict[str, Any], entries: list[Any]) -> str:
    before, after, served = d["before"], d["prod_image"], d.get("served")
    if served and served != before:   # the pin had moved (an interrupted deploy) but the host never took it
        if served == after and before is None:   # pin.json moved aside (a corrupt one, as its refusal advises)
            return f"PROD redeployed {after}, which its host still served (it had no pin) (smoke passed)"
        if served == after:
            how = ("by hand, outside goldgate (no promotion or rollback in the ledger moved the pin there)"
                   if d.get("pinned_outside_goldgate") else "by an interrupted change")
            return (f"PROD redeployed {after}, which its host still served ({before} was pinned {how} and never "
                    "served) (smoke passed)")
        before = served
    if before == after:   # finishing an interrupted change, or retrying a failed rollback: "X -> X" said nothing
        return f"PROD redeployed {after}, which it already ran (smoke passed)"
    # `rollback --to` may name a release promoted after the one PROD ran: that is no step back.
    first: dict[Any, int] = {}
    for e in entries:
        if e.kind == "promotion" and e.get("phase") == "outcome" and e.get("stack", "prod") == d["stack"]:
            first.setdefault(e.get("prod_image"), e.seq)
    if before in first and after in first and first[after] > first[before]:
        return f"PROD moved forward to a newer release: {before} -> {after} (smoke passed)"
    return f"PROD rolled back: {before or '(no image)'} -> {after} (smoke passed)"


# -- history -----------------------------------------------------------------------------------

def cmd_history(args: argparse.Namespace) -> int:
    ledger = Ledger(_home(args))
    read = ledger.entries()  # the whole hash chain verified, whatever is shown
    every = len(read)
    if args.target:  # one state dir may record both targets' releases: their stacks share the names staging and prod
        read = on_target(read, args.target)
    hidden = "" if len(read) == every else (
        f" (the {args.target} target's; {every - len(read)} of the other target not shown)")
    unsigned = [e.seq for e in read if not e.authentic]
    limit = args.limit or (None if getattr(args, "json", False) or args.all else HISTORY_SHOWN)
    entries = [e.to_dict() for e in (read[-limit:] if limit else read)]  # only the entries shown become rows
    older = len(read) - len(entries)
    # With the ledger key, say which entries the gate and rollback will not trust (recorded without it, or forged).
    signed = "" if not ledger.keyed else "; every entry has a valid MAC" if not unsigned else (
        f"; {len(unsigned)} without a valid MAC for the ledger key (the gate and rollback do not trust them): "
        + ("... " if len(unsigned) > 10 else "") + ", ".join(f"#{seq}" for seq in unsigned[-10:]))
    macs = sum(e.mac is not None for e in read)
    if macs and not ledger.keyed:
        # "Verified" is then the hash chain alone, which whoever can write the file recomputes: on a signed ledger
        # (CI's branch, restored by a step without the key) say that no MAC was checked.
        signed = (f"; the MACs of its {macs} signed entr{'y' if macs == 1 else 'ies'} are not checked: {KEY_ENV} "
                  "is not set")

    # A PROD change whose command died before its outcome looks like any intent row: say it has none.
    stacks = {e.get("stack", "prod") for e in read if e.get("phase") == "intent" and isinstance(e.get("stack", ""), str)}
    open_intents = {i.intent_seq for stack in stacks for i in interrupted(read, stack)}
    # The commands that finish them act on their target's stacks: named with it (the local target's otherwise).
    targets = {args.target} if args.target else {entry_target(e) for e in read if e.seq in open_intents}
    on = _on(targets.pop()) if len(targets) == 1 else ""

    def render(rows: list[dict[str, Any]]) -> str:
        # A golden run has no phase: its suite (full or smoke) goes there, so a PROD smoke run and a full run differ.
        flat = [{"seq": r["seq"], "ts": r["ts"], "kind": r["kind"], "phase": r.get("phase") or _suite_ran(r),
                 "stack": r.get("stack", ""),
                 "outcome": "UNFINISHED" if r["seq"] in open_intents else _outcome(r),
                 "image": _short(r.get("prod_image") or r.get("image") or r.get("after")),
                 "trigger": r.get("trigger", "")} for r in rows]
        unfinished = "" if not open_intents else (
            f"\nunfinished: {', '.join(f'#{seq}' for seq in sorted(open_intents))} recorded an intent and no outcome "
            f"(its command is still running, or was interrupted): the next `goldgate promote{on}` or `goldgate "
            f"rollback{on}` records an interrupted one as interrupted and says what PROD was left on; `goldgate "
            f"rollback{on}` undoes it")
        shown = f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}" if not older else (
            f"the newest {len(rows)} of {len(read)} entries ({older} older not shown: --limit N for more, --all for "
            "every one)")
        return table(flat, ["seq", "ts", "kind", "phase", "stack", "outcome", "image", "trigger"]) + unfinished + \
            f"\n{shown}{hidden}; hash chain verified{signed}"
    emit(args, entries, render)
    return 0


def _suite_ran(entry: dict[str, Any]) -> str:
    """A golden run's suite as history shows it: one over another directory's cases (`--cases-dir`) is not the full
    suite the gate asks for, and says which cases it ran, as the run's own summary does."""
    suite, where, cases = entry.get("suite", ""), entry.get("cases_dir"), entry.get("cases")
    if isinstance(entry.get("only_cases"), list) and isinstance(cases, int) and not isinstance(cases, bool):
        return f"{cases}{' smoke' if suite == 'smoke' else ''} case{'' if cases == 1 else 's'} (--case)"
    if not isinstance(where, str) or not isinstance(cases, int) or isinstance(cases, bool) \
            or where == shown_dir(GoldenPaths().cases_dir):
        return str(suite)
    return f"{cases}{' smoke' if suite == 'smoke' else ''} case{'' if cases == 1 else 's'} of {where}"


def _outcome(entry: dict[str, Any]) -> str:
    """A promotion's or rollback's outcome as recorded; a golden run's `passed` as passed / FAILED."""
    if "outcome" in entry:
        return str(entry["outcome"])
    if entry.get("kind") == "deploy" and entry.get("rollout_confirmed") is False:
        return "rollout not confirmed"   # applied: the stack took the image, and serves it or is rolling to it
    passed = entry.get("passed")
    return "" if passed is None else ("passed" if passed else "FAILED")


def _short(image: Any) -> str:
    if not isinstance(image, str):
        return "-"
    repo, _, digest = image.partition("@")
    return f"{repo}@{digest[:19]}" if digest else image


# -- main's stack files (what CI's PROD jobs take from main and give back) --------------------------

def cmd_check_prod_file(args: argparse.Namespace) -> int:
    # On a signed ledger read without its key, a decision that relies on a ledger line is refused, as promote's is.
    ledger = Ledger(_home(args))
    check = check_prod_file(read_stack_file(Path(args.stack_file)), read_stack_file(Path(args.main_file)),
                            ledger.entries(), Path(args.report) if args.report else None,
                            require_key=ledger.require_key_if_signed)
    emit(args, check.to_dict(), lambda d: d["message"])
    return 0


def cmd_pins_onto_main(args: argparse.Namespace) -> int:
    stacks = [stack for stack in STACKS if stack in (args.stacks or STACKS)]
    ours = {stack: read_stack_file(Path(args.stacks_dir) / f"Pulumi.{stack}.yaml") for stack in stacks}
    mains = {stack: read_stack_file(Path(args.main_dir) / "stacks" / f"Pulumi.{stack}.yaml") for stack in stacks}
    ledger = Ledger(_home(args))
    pins = pins_onto_main(ours, mains, ledger.entries(), require_key=ledger.require_key_if_signed)
    for move in pins.moves:  # written only once every stack's move is known: a refusal leaves main's files as they were
        # Whole or not at all (temp, fsync, rename): a kill or a full disk mid-write left main's checkout a truncated
        # stack file, which the pin commit (`commit -a`) would have taken. Through a symlink, as write_bytes wrote,
        # and with the file's own mode.
        target = move.path.resolve()
        write_text_atomic(target, move.text, mode=stat.S_IMODE(target.stat().st_mode))
    emit(args, pins.to_dict(), _render_pins)
    return 0


def _render_pins(d: dict[str, Any]) -> str:
    # "warning: " starts a line CI shows as a warning: main keeps a pin this run set.
    lines = [f"warning: {w}" for w in d.get("warnings") or ()]
    lines += [f"warning: {k['message']}" for k in d["kept"]]
    lines += [f"{m['stack']}: {m['before']} -> {m['after']}" for m in d["moved"]]
    return "\n".join(lines) or "main's pins are this run's: nothing to move"


# -- release -----------------------------------------------------------------------------------

def cmd_release(args: argparse.Namespace) -> int:
    if args.target == "local" and (args.repo or args.engine == "docker"):
        # A local stack runs snapshots of this home only: the pushed image was refused at STAGING's deploy, after
        # the build and the push. Checked before the build's own checks, which asked for the --repo this refuses.
        given = " and ".join(([f"--repo {args.repo}"] if args.repo else [])
                             + (["--engine docker"] if args.engine == "docker" else []))
        raise GoldgateError(f"a local release runs a local snapshot: drop {given}, or release a pushed image to the "
                            "cloud stacks with --target cloud")
    t0 = time.monotonic()
    home, ledger, trigger = _home(args), Ledger(_home(args)), detect_trigger(args.trigger)
    deployer = _deployer(args)
    _check_build(args)  # a build that would be refused fails before any stack is touched
    _check_release_stacks(deployer, args.staging, args.prod)
    _check_stack_placeholders(deployer, args.staging, args.prod)
    _check_declared(deployer, args.target, args.staging, args.prod)
    ledger.require_key_if_signed(f"release to {args.prod}")   # refused now, not after the build and golden run
    _check_references(args, _paths(args))
    summary: dict[str, Any] = {"target": args.target, "home": str(home)}
    progress(f"release on the {args.target} target (state: {home})")
    t = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:  # both stacks start at once
        for f in [pool.submit(deployer.ensure_up, s, progress) for s in (args.staging, args.prod)]:
            f.result()
    summary["up_s"] = round(time.monotonic() - t, 2)
    # STAGING at its daily spend limit refuses every create: the golden run after the build and the deploy would
    # judge nothing. Refused before anything is built or deployed (PROD's is checked by the promotion itself).
    check_within_spend_limit(deployer, args.staging, progress, doing="release",
                             because=f"the golden run on {args.staging} could not run, so nothing would be promoted")
    t = time.monotonic()
    built = do_build(args, ledger)
    summary.update(image=built.image, release_id=built.release_id, build_s=round(time.monotonic() - t, 2))
    progress(f"built {built.image} (release {built.release_id})")
    t = time.monotonic()
    do_deploy(deployer, ledger, args.staging, built.image, trigger)
    summary["deploy_staging_s"] = round(time.monotonic() - t, 2)
    golden: GoldenRun = run_golden(deployer, args.staging, ledger, paths=_paths(args), trigger=trigger,
                                   progress=progress, concurrency=args.concurrency)
    rep = golden.report
    summary["golden"] = {"passed": golden.passed, "report": str(golden.path), "html": str(golden.html_path),
                         "cases": len(rep["cases"]), "cases_passed": sum(c["passed"] is True for c in rep["cases"]),
                         "latency_s": rep["latency_s"],
                         "wall_time_s": rep["wall_time_s"], "sum_latency_s": rep["sum_latency_s"],
                         "failures": rep["failures"], "run_failures": run_failures(rep)}
    outcome: PromotionOutcome | None = None
    error: str | None = None
    if golden.passed:
        try:
            # Gate on this run's own report: latest.json is whichever golden run in this state dir wrote last.
            outcome = promote(deployer, ledger, home, report_path=golden.path,
                              staging=args.staging, prod=args.prod, trigger=trigger, progress=progress,
                              paths=_paths(args), expected_image=built.image)  # what this release built, only
            summary["promotion"] = outcome.to_dict()
            error = None if outcome.ok else outcome.message()
        except (PromotionRefused, AtSpendLimit) as exc:
            error = str(exc)
    else:
        # What to do next, as the gate's report_passed says it: a failed run calls for a fix and a new build, unless
        # all it lacked lies in the suite (a case for a served workflow, a reference), where the image is not at fault.
        suite_side = suite_side_only(rep, rep["failures"] if isinstance(rep.get("failures"), list) else [])
        on, paths = _on(args.target), _given_paths(args)
        # `goldgate promote` takes no stack names (it promotes from the stack named staging to the one named prod):
        # a release over other stacks is run again instead.
        promote_it = (f"`goldgate promote{on}{paths} --image {built.image}`"
                      if (args.staging, args.prod) == ("staging", "prod") else f"`{_release_again(args)}`")
        then = (f"the image is not at fault: {suite_side}, then run `goldgate golden {args.staging}{on}{paths}` "
                f"and {promote_it}" if suite_side else
                "fix the cause (the failures above; the page shows each render beside its reference), then run "
                f"`{_release_again(args)}` again")
        error = f"golden suite failed on {args.staging}; {built.image} is not promoted and PROD is unchanged: {then}"
    summary["prod_image"] = deployer.current_image(args.prod)
    summary["duration_s"] = round(time.monotonic() - t0, 2)
    summary["ok"] = error is None
    summary["error"] = error
    emit(args, summary, _render_release)
    if error:
        raise GoldgateError(error)
    return 0


def _check_release_stacks(deployer: Deployer, staging: str, prod: str) -> None:
    """--staging must name a non-PROD stack and --prod a PROD one, two different stacks: checked before any stack
    is brought up (`--prod staging` would otherwise "promote" to STAGING and report it as PROD)."""
    if staging == prod:
        raise GoldgateError(f"--staging and --prod both name {staging!r}: the release tests on one stack and "
                            "promotes to another")
    if deployer.spec(staging).role == "prod":
        raise GoldgateError(f"--staging {staging} is a PROD stack: it takes an image only through `goldgate "
                            "promote`; name the STAGING stack")
    if deployer.spec(prod).role != "prod":
        raise GoldgateError(f"--prod {prod} is not a PROD stack (its role is {deployer.spec(prod).role}); "
                            "name the stack whose role is prod")


# What infra/program.py refuses in a spec (`<PLACEHOLDER>`), and a `secure: "<...>"` placeholder written in place of
# a secret (the Pulumi CLI cannot decrypt it).
_SPEC_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")
_SECRET_PLACEHOLDER = re.compile(r"\s*<[^<>]*>\s*")


def _spec_placeholders(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [where] if _SPEC_PLACEHOLDER.search(value) else []
    if isinstance(value, Mapping):
        return [w for k, v in value.items() for w in _spec_placeholders(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [w for i, v in enumerate(value) for w in _spec_placeholders(v, f"{where}[{i}]")]
    return []


def _secret_given(value: Any) -> bool:
    """Whether a stack file's config value is a secret set at all: `secure:` text that is no `<placeholder>`. A
    plain value is not judged here (the program refuses a secret stored in plain text, naming it), nor whether the
    `secure:` text is ciphertext (`_ciphertext`)."""
    if isinstance(value, Mapping):
        secure = value.get("secure")
        return isinstance(secure, str) and bool(secure.strip()) and not _SECRET_PLACEHOLDER.fullmatch(secure)
    return value is not None and bool(str(value).strip())


# How `pulumi config set --secret` writes a `secure:` value. The passphrase provider, and a cloud KMS provider
# (awskms://, gcpkms://, azurekeyvault://, hashivault://, which encrypt each value with the stack's data key the same
# way): `v1:<nonce>:<ciphertext>`, both standard base64, the AES-256-GCM nonce 12 bytes, the ciphertext at least
# its 16-byte tag. Such a stack file carries `encryptionsalt:` (passphrase) or `encryptedkey:` (KMS). The Pulumi
# Cloud provider (a stack file with neither): the service's ciphertext, standard base64.
_HEX = re.compile(r"[0-9A-Fa-f]+")
_GCM_NONCE_BYTES, _GCM_TAG_BYTES = 12, 16


def _decoded(text: str) -> bytes | None:
    """`text` as standard base64 (padded, nothing else in it), or None."""
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except ValueError:  # binascii.Error, and a character outside ASCII
        return None


def _ciphertext(secure: str, data_key: bool) -> bool:
    """Whether `secure:` text has the shape of ciphertext the Pulumi CLI wrote (`data_key`: the stack file names a
    passphrase or KMS provider, whose values are all `v1:`). Only the shape: a value copied from another stack is
    ciphertext too, and the CLI's decryption says so. A secret pasted in by hand (`secure: "rpa_..."`, a hex token)
    is not: it sits in plain text in the file, and the CLI fails to decrypt it at PROD's promotion, after the build,
    the push and STAGING's golden run. A token that happens to be base64 passes on a Pulumi Cloud stack, but never a
    hex one (`openssl rand -hex`), which no ciphertext of that length spells by chance."""
    version, _, rest = secure.partition(":")
    if version == "v1" and rest.count(":") == 1:
        nonce, ciphertext = (_decoded(part) for part in rest.split(":"))
        return (nonce is not None and len(nonce) == _GCM_NONCE_BYTES and ciphertext is not None
                and len(ciphertext) >= _GCM_TAG_BYTES)
    if data_key:
        return False
    decoded = _decoded(secure)
    return decoded is not None and len(decoded) >= _GCM_TAG_BYTES and not _HEX.fullmatch(secure)


def _check_stack_placeholders(deployer: Deployer, staging: str, prod: str) -> None:
    """A cloud stack file not yet filled in: a secret never set (absent, as the files ship, empty, or a `secure:
    "<...>"` placeholder) or a `<PLACEHOLDER>` in goldgate:spec, which `pulumi up` refuses: STAGING's at this release's deploy, after the
    build and the push, PROD's at its promotion, after the golden run. The image is left out: the all-zero pin
    is what the release replaces (STAGING's deploy, PROD's promotion). Each file's are listed on a line of their
    own, before the one-line refusal."""
    from goldgate.release.deployers.cloud import CloudDeployer

    if not isinstance(deployer, CloudDeployer):
        return
    files: list[str] = []
    for stack in (staging, prod):
        path = deployer.settings.project_dir / specs.STACKS_DIR.name / f"Pulumi.{stack}.yaml"
        doc = specs.read_yaml(path)   # read once already by spec(): readable, with a goldgate:spec
        config = doc.get("config") if isinstance(doc, Mapping) else None
        if not isinstance(config, Mapping):
            continue
        # A secret the stack file lacks (the shipped files carry none), holds empty, or holds as a placeholder
        # (`secure: "<...>"`, which the Pulumi CLI fails to decrypt before the program runs).
        given = {specs._our_config_key(key): value for key, value in config.items()}
        unset = [key for key in specs.STACK_SECRET_KEYS.values() if not _secret_given(given.get(key))]
        environments = _environments(doc)
        if environments:
            # The file imports Pulumi ESC environments, whose `pulumiConfig` may supply a secret the file lacks:
            # only the CLI resolves those (`pulumi config get`, the value never shown), so only what it says is not
            # set is refused. One the file holds as a placeholder stays refused: the CLI fails to decrypt it first.
            unset = [key for key in unset if key in given or not _set_by_environment(deployer, stack, key, path)]
        # Set, but not as the CLI sets a secret: by hand, a secret's own value. Named by key, never shown.
        data_key = any(doc.get(field) for field in ("encryptionsalt", "encryptedkey"))
        pasted = [key for key, value in config.items() if isinstance(key, str) and isinstance(value, Mapping)
                  and _secret_given(value) and not _ciphertext(value["secure"], data_key)]
        spec = config.get("goldgate:spec")
        left = [w for k, v in (spec.items() if isinstance(spec, Mapping) else ()) if k != "image"
                for w in _spec_placeholders(v, f"goldgate:spec.{k}")]
        # One progress line each (progress writes a newline in a message as `\n`): the commands copied one by one.
        if unset:
            one_env = len(environments) == 1
            imported, there = ("", "") if not environments else (
                (f" in the file nor by the Pulumi ESC environment{'' if one_env else 's'} it imports "
                 f"({', '.join(environments)})"),
                f" (or in the `pulumiConfig` of {'that environment' if one_env else 'one of them'})")
            progress(f"{shown_dir(path)}: secret{'' if len(unset) == 1 else 's'} not set{imported}: "
                     f"{', '.join(f'{specs.CONFIG_NAMESPACE}:{key}' for key in unset)}; set "
                     f"{'it' if len(unset) == 1 else 'each'} encrypted, the value piped in{there}:")
            for key in unset:
                progress(f"  {specs.set_secret_command(key, stack)}")
        if pasted:
            one = len(pasted) == 1
            progress(f"{shown_dir(path)}: `secure:` value{'' if one else 's'} that {'is' if one else 'are'} no "
                     f"ciphertext this stack's Pulumi secrets provider writes (written in by hand?): "
                     f"{', '.join(pasted)}. If "
                     f"{'it is' if one else 'one is'} a real secret, it sits in plain text in this file (and in git's "
                     "history, once committed): rotate it (a new key or token from its issuer, the old one revoked), "
                     "then set the new one encrypted, the value piped in:")
            for key in pasted:
                name = specs._our_config_key(key)
                progress("  " + (specs.set_secret_command(name, stack) if name in specs.SECRET_CONFIG_KEYS
                                 else f'printf %s "$VALUE" | pulumi config set --secret {key} --stack {stack}'))
        if left:
            progress(f"{shown_dir(path)}: still a <PLACEHOLDER>: {', '.join(left)}")
        if unset or pasted or left:
            files.append(shown_dir(path))
    if files:
        s = "s" if len(files) == 1 else ""
        raise GoldgateError(f"cannot release: {' and '.join(files)} still lack{s} secrets, hold{s} placeholders or "
                            f"hold{s} secrets that are no ciphertext (listed above), which `pulumi up` refuses: the "
                            "release would fail at "
                            "STAGING's deploy, after the build and the push, or at PROD's promotion; fill them in "
                            "(docs/CLOUD.md, \"Configure a stack\", steps 2 and 3); nothing was built or changed")


def _environments(doc: Any) -> list[str]:
    """The Pulumi ESC environments a stack file imports: its `environment:` list, or the `imports:` of an environment
    defined in place (a mapping); an inline definition importing none is named as such."""
    found = doc.get("environment") if isinstance(doc, Mapping) else None
    if isinstance(found, Mapping):
        imports = found.get("imports")
        names = [str(name) for name in imports] if isinstance(imports, list) else []
        return names or ["(its inline environment definition)"]
    if isinstance(found, list):
        return [str(name) for name in found]
    return [str(found)] if isinstance(found, str) and found.strip() else []


def _set_by_environment(deployer: Any, stack: str, key: str, path: Path) -> bool:
    """Whether the Pulumi CLI resolves goldgate:`key` on `stack` (from an ESC environment). One it cannot ask about
    (an environment it cannot open) is said and let through: `pulumi up` reports it, as before this check."""
    name = f"{specs.CONFIG_NAMESPACE}:{key}"
    state, why = deployer.config_resolved(stack, name)
    if state is None:
        progress(f"{shown_dir(path)}: {name} not checked: `pulumi config get {name} --stack {stack}` failed ({why})")
        return True
    return state


def _check_references(args: argparse.Namespace, paths: GoldenPaths) -> None:
    """On the cloud target, a golden case with no reference image in references/cloud/: the release's golden run
    on STAGING would fail it for certain, after the build, the push and the deploy (and GPU time for every case),
    and PROD would stay as it is. `goldgate release` cannot make references (a person looks at each render
    first): the first cloud release, which makes them all, is done by hand, and so is a case added since. The
    commands are listed before the one-line refusal."""
    if args.target != "cloud":
        return   # the local references ship with the checkout, and a local run costs seconds
    cases = load_cases(paths.cases_dir)
    references = references_for(paths.references_dir, args.target)
    missing = [c.id for c in cases if not (references / c.reference_name).is_file()]
    if not missing:
        return
    first = len(missing) == len(cases)
    given = "".join(f" --{option.replace('_', '-')} {shlex.quote(str(getattr(args, option)))}"
                    for option in ("cases_dir", "references_dir") if getattr(args, option, None))
    where = shown_dir(references)
    alone = "" if first else "".join(f" --case {case_id}" for case_id in missing)
    build = "".join(f" --{option} {shlex.quote(str(getattr(args, option)))}" for option in ("context", "dockerfile")
                    if getattr(args, option, None) and getattr(args, option) != {"context": str(builds.WORKER_DIR),
                                                                                "dockerfile": "Dockerfile"}[option])
    if getattr(args, "workflow_version", None):
        build += f" --workflow-version {shlex.quote(args.workflow_version)}"
    reports = _given_paths(args, ("reports_dir",))   # where the golden run writes the report promote reads
    for step in (f"goldgate build --target cloud --repo {shlex.quote(args.repo or 'REPO')}{build}   # prints REF",
                 f"goldgate deploy {args.staging} --target cloud --image REF",
                 f"goldgate golden {args.staging} --target cloud --update-references{given}{alone}",
                 f"# look at every image it wrote in {where}, commit that directory alone, then:",
                 f"goldgate golden {args.staging} --target cloud{given}{reports}",
                 f"goldgate promote --target cloud{given}{reports} --image REF"):
        progress(f"  {step}")
    if first:
        raise GoldgateError(
            f"cannot release to the cloud yet: {where} holds no reference image for any of the {len(cases)} golden "
            f"cases, so the golden run on {args.staging} would fail every one, after the build, the push and the "
            "deploy. `goldgate release` makes no references; the first cloud release, by hand (the commands above; "
            "docs/CLOUD.md, \"The first release by hand\"), makes them. Nothing was built or changed")
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    raise GoldgateError(
        f"cannot release to the cloud: {where} holds no reference image for {len(missing)} of the {len(cases)} "
        f"golden cases ({shown}), so the golden run on {args.staging} would fail "
        f"{'it' if len(missing) == 1 else 'them'}, after the build, the push and the deploy. Make "
        f"{'its reference' if len(missing) == 1 else 'theirs'} by hand, alone (the commands above; "
        "scripts/golden-tests/README.md under \"References on the cloud target\"). Nothing was built or changed")


def _declared_in(target: str, stack: str) -> str:
    """Where a stack's workflow_version is written, as the operator edits it."""
    if target == "cloud":
        return f"stacks/Pulumi.{stack}.yaml (goldgate:spec: workflow_version)"
    return f"stacks/local.yaml (stacks: {stack}: workflow_version)"


def _check_declared(deployer: Deployer, target: str, staging: str, prod: str) -> None:
    """What the release would find out only after the build, the STAGING deploy and the golden run: the gate refuses
    a report when STAGING and PROD declare other workflow versions (`report_workflow_version`), and a running local
    stack that reads an older section of the stacks file than the file holds refuses its golden or smoke run (after
    PROD took the digest, for its smoke). Refused here, before anything is built, deployed or recorded."""
    versions = {stack: deployer.spec(stack).workflow_version for stack in (staging, prod)}
    if versions[staging] != versions[prod]:
        raise GoldgateError(f"cannot release: {staging} declares workflow_version {versions[staging]!r} and {prod} "
                            f"{versions[prod]!r}, and the promotion gate refuses a report for a version PROD does "
                            f"not declare (report_workflow_version); set both alike in {_declared_in(target, staging)} "
                            f"and {_declared_in(target, prod)}; nothing was changed")
    for stack in (staging, prod):
        check_runs_as_declared(deployer, stack, "cannot release")


def _kept_serving(s: dict[str, Any]) -> str:
    """A local release's stacks run on this machine until `goldgate down all`; a cloud one's are Pulumi's, which
    that command never stops (it would say so of the local stacks alone)."""
    if s.get("target", "local") == "local":
        return "OK: STAGING and PROD keep serving until `goldgate down all`"
    return (f"OK: STAGING and PROD keep serving it; `goldgate history --target {s['target']}` lists what each "
            "ran")


def _render_release(s: dict[str, Any]) -> str:
    g = s["golden"]
    lat = g["latency_s"]
    cases = f"{g['cases']} case{'' if g['cases'] == 1 else 's'}"
    # As `goldgate golden` says it: "FAILED: 6 cases" read as six failures when two of them had passed; and with
    # every case passed, what failed the run (a served workflow no case runs): "7 of 7 cases passed" read as a pass.
    beyond = _failed_beyond(g.get("run_failures") or [], g["cases_passed"] == g["cases"])
    verdict = f"PASSED: {cases}" if g["passed"] else f"FAILED: {g['cases_passed']} of {cases} passed{beyond}"
    lines = ["", "=== goldgate release ===",
             f"image        {s['image']}",
             f"release id   {s['release_id']}",
             f"golden       {verdict}",
             f"             {latency_words(lat, g['cases'], g['wall_time_s'], g['sum_latency_s'])}",
             f"             page   {g['html']}",  # each render beside its reference: what a failed check needs
             f"             report {g['report']}"]
    failures = g.get("failures") or []
    lines += [f"             failure {f}" for f in failures[:10]]
    if len(failures) > 10:
        lines.append(f"             ... {len(failures) - 10} more failures in the report")
    promo = s.get("promotion")
    if promo:
        lines.append(f"promotion    {promo['outcome']}: {promo['message']}")
    lines += [f"PROD runs    {s['prod_image'] or '(nothing)'}",
              f"duration     {s['duration_s']} s (stacks up {s['up_s']} s, build {s['build_s']} s)",
              "result       " + (_kept_serving(s) if s["ok"] else f"FAILED: {s['error']}")]
    return "\n".join(lines)
