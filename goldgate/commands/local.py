"""Local-target commands: up, down, reload, status, recover, demo, doctor."""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from goldgate import spec as specs
from goldgate.bounded_http import tls_context
from goldgate.commands.local_args import register  # noqa: F401 -- the area's subcommands, listed here too
from goldgate.commands.output import emit, escape_controls, one_line_values, progress, say, table
from goldgate.errors import GoldgateError, StateError
from goldgate.files import NotARegularFile, make_dirs, open_regular
from goldgate.local import image_store
from goldgate.local.platform import NO_MODELS_SECTION, LocalPlatform, Reloaded, StackStatus
from goldgate.local.state import StackDir, default_home

WORKER_SOURCE = Path(__file__).resolve().parents[2] / "images" / "worker"


def _platform(args: argparse.Namespace) -> LocalPlatform:
    return LocalPlatform(Path(args.home) if getattr(args, "home", None) else None)


def ensure_up(platform: LocalPlatform, stack: str) -> StackStatus:
    """Bring a stack up; a STAGING stack with nothing deployed gets the working tree's image first. One whose host
    runs is pinned nothing: the working tree's image pinned under a host that serves another (its pin.json moved
    aside) is what its next start would have run, unsaid. A host that failed to start (its state says so; it is
    still shutting down) serves nothing and never will: the image is pinned, so the host started once it has ended
    (by this `up`, after the one that waits for the failed host) runs the working tree's image, not none."""
    spec = specs.load_local(stack, platform.stacks_file)
    if spec.role == "staging" and platform.pinned_image(stack) is None and _no_serving_host(platform, stack):
        progress(f"{stack}: nothing deployed yet; building the worker image from {WORKER_SOURCE}")
        image = image_store.build_local_image(WORKER_SOURCE, platform.home)
        StackDir(platform.home, stack).pin(image, reason="first up: working tree")
        progress(f"{stack}: pinned {image}")
    return platform.up(stack, progress)


def _no_serving_host(platform: LocalPlatform, stack: str) -> bool:
    """No host of `stack` lives, or the one that does has failed: its state file says "failed" under its own pid
    (a terminal state, so no race with a host that is still starting and may yet become ready)."""
    pid = platform.host_pid(stack)
    if pid is None:
        return True
    state = StackDir(platform.home, stack).read_state()
    return isinstance(state, dict) and state.get("status") == "failed" and state.get("pid") == pid


def cmd_up(args: argparse.Namespace) -> int:
    platform = _platform(args)
    if args.stack != "all":
        emit(args, _with_verdicts(platform, ensure_up(platform, args.stack)), _render_status)
        return 0
    # Every stack the stacks file names, as `down all` stops them: one that cannot start is named with the reason
    # (as `status` names it), and the others are still brought up.
    data: list[dict[str, Any]] = []
    for stack in specs.local_stack_names(platform.stacks_file):
        try:
            data.append(_with_verdicts(platform, ensure_up(platform, stack)))
        except GoldgateError as exc:
            data.append({"stack": stack, "running": None, "state": "not up", "error": str(exc)})
    emit(args, data, _render_status)
    return 1 if any("error" in s for s in data) else 0


def cmd_down(args: argparse.Namespace) -> int:
    platform = _platform(args)
    if not platform.home.exists():
        # Run from another directory than the checkout that started the stacks: "down: prod, staging" here
        # told the operator they were down while they went on serving.
        _note_missing_home(platform)
        # The path comes from the working directory or GOLDGATE_HOME: printed as one line, as `emit` prints values.
        say(f"down: nothing to stop: no state dir at {escape_controls(str(platform.home))}")
        return 0
    if args.stack != "all":
        platform.down(args.stack, progress)  # a stack whose section left the stacks file is stopped all the same
        say(f"down: {args.stack}")
        return 0
    # Every stack: one that cannot be stopped is named with the reason, and the others are still stopped. So is a
    # stack whose host runs although its section left the file: `down` needs nothing from the section.
    stopped, failed = [], []
    for stack in _stacks_to_stop(platform):
        try:
            platform.down(stack, progress)
        except GoldgateError as exc:
            failed.append(f"{stack}: {exc}")
        else:
            stopped.append(stack)
    if stopped:
        say(f"down: {', '.join(stopped)}")
    if failed:
        raise StateError(f"not stopped: {'; '.join(failed)}")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    """`goldgate reload <stack>|all`: the stack's secret files and API settings applied to its running service
    (LocalPlatform.reload). `all`: each stack the stacks file names that runs; one that is down is named as such,
    one that refuses its files with why, and the others are still reloaded."""
    platform = _platform(args)
    if args.stack != "all":
        emit(args, _reloaded(platform.reload(args.stack, progress)), _render_reloaded)
        return 0
    data: list[dict[str, Any]] = []
    for stack in specs.local_stack_names(platform.stacks_file):
        if platform.running_host(stack) is None:
            data.append({"stack": stack, "reloaded": False, "state": "not up",
                         "note": f"it reads its files at `goldgate up {stack}`"})
            continue
        try:
            data.append(_reloaded(platform.reload(stack, progress)))
        except GoldgateError as exc:
            data.append({"stack": stack, "reloaded": False, "error": str(exc)})
    emit(args, data, _render_reloaded)
    return 1 if any("error" in s for s in data) or not any(s["reloaded"] for s in data) else 0


def _reloaded(result: Reloaded) -> dict[str, Any]:
    return {"reloaded": True, **result.to_dict()}


def _render_reloaded(data: Any) -> str:
    lines = []
    for s in data if isinstance(data, list) else [data]:
        stack = s["stack"]
        if "error" in s:
            lines.append(f"{stack}: NOT RELOADED: {s['error']}")
        elif not s["reloaded"]:
            lines.append(f"{stack}: not up ({s['note']})")
        else:
            applied = [*s["changed"], *s["settings_applied"]]
            what = (f"applied {', '.join(applied)}" if applied else "no secret file nor API setting changed since its "
                    "service started (it was started again on the same ones)")
            lines.append(f"{stack}: reloaded: {what}; its service (pid {s['service_pid']}) took over with no job "
                         "stopped")
            if s.get("settings_not_applied"):
                lines.append(s["settings_not_applied"])
    return "\n".join(lines)


def _stacks_to_stop(platform: LocalPlatform) -> list[str]:
    """The stacks `down all` stops: those the stacks file names and those still running off it. A stacks file that
    cannot be read at all (broken in an edit, or gone) failed `down all` as a whole, leaving every stack serving:
    then each stack of this home whose host runs is stopped, and the file's problem is named."""
    try:
        named = specs.local_stack_names(platform.stacks_file)
    except GoldgateError as exc:
        running = _running_hosts(platform)
        progress(f"{exc}; stopping the stacks of {platform.home} whose host runs: {', '.join(running) or 'none'}")
        return running
    return [*named, *_hosts_off_file(platform)]


def _running_hosts(platform: LocalPlatform) -> list[str]:
    try:
        dirs = sorted(p.name for p in (platform.home / "stacks").iterdir() if p.is_dir())
    except OSError:  # no stacks yet
        return []
    running = []
    for stack in dirs:
        try:
            if platform.running_host(stack) is None:
                continue
        except (OSError, StateError):  # its state unreadable: `down` stops it or names why it cannot
            pass
        running.append(stack)
    return running


def _hosts_off_file(platform: LocalPlatform) -> dict[str, int]:
    """Stacks of this home whose host still runs although the stacks file no longer names them (their section was
    removed or renamed while they ran), by host pid. `down all` and `status` go by the file: without this they
    passed over such a stack in silence, and `down all` said it was done while the stack went on serving."""
    root = platform.home / "stacks"
    try:
        dirs = sorted(p.name for p in root.iterdir() if p.is_dir())
    except OSError:  # no stacks yet, or the command that reads the file names what is wrong
        return {}
    named = {str(name) for name in specs.local_stack_names(platform.stacks_file)}
    running = {}
    for stack in dirs:
        if stack in named:
            continue
        try:
            pid = platform.running_host(stack)
        except (OSError, StateError):
            continue
        if pid is not None:
            running[stack] = pid
    return running


def _left_running(platform: LocalPlatform, stack: str, pid: int) -> str:
    return (f"its host (pid {pid}) still runs, but {platform.stacks_file} no longer has a section for it: "
            f"`goldgate down {stack}` stops it")


# The label of PROD's row for its failed golden run (`smoke_failed`, kept as the --json key it always was), by the run
# `failed_run` names: a failed `golden prod --case X` run was labelled SMOKE FAILED while its sentence said it was no
# smoke run. A status from an older goldgate (no `failed_run`) keeps the old label.
_FAILED_RUN_LABELS = {"smoke": "SMOKE FAILED", "case": "CASE RUN FAILED", "full": "FULL RUN FAILED",
                      "unknown": "GOLDEN RUN FAILED"}


def _render_status(data: Any) -> str:
    rows = data if isinstance(data, list) else [data]
    lines = []
    for s in rows:
        if "error" in s:
            lines.append(f"{s['stack']}: {s.get('state') or ('up' if s.get('running') else 'unknown')}: {s['error']}")
            continue
        lines.append(f"{s['stack']}: {'up' if s['running'] else 'down'}")
        if s.get("ended"):
            lines.append(f"  {'not stopped by down':<22} {s['ended']}")
        for key in ("api_url", "image", "workflow_version", "endpoint_id", "runpod_endpoint_base", "logs_dir"):
            lines.append(f"  {key:<22} {s.get(key) or '-'}")
        if s.get("database_lost"):
            lines.append(f"  {'DATABASE':<22} {s['database_lost']}")
        if s.get("smoke_failed"):
            lines.append(f"  {_FAILED_RUN_LABELS.get(s.get('failed_run'), 'SMOKE FAILED'):<22} {s['smoke_failed']}")
        if s.get("unverified"):
            lines.append(f"  {'UNVERIFIED':<22} {s['unverified']}")
        if s.get("pin_not_served"):
            lines.append(f"  {'pin':<22} {s['pin_not_served']}")
        if s.get("code_changed"):
            lines.append(f"  {'code':<22} {s['code_changed']}")
        if s.get("spec_changed"):
            lines.append(f"  {'settings':<22} its stacks file section changed since it started (it runs the old one); "
                         f"`goldgate down {s['stack']} && goldgate up {s['stack']}` applies it (`goldgate reload "
                         f"{s['stack']}` its `api` settings alone, with no job stopped)")
        if s["workers"]:
            lines.append("  workers:")
            lines.append("    " + table(s["workers"], ["id", "status", "is_stale", "image"]).replace("\n", "\n    "))
        elif s["running"]:
            lines.append(f"  {'workers':<22} none running (they start when jobs come)")
        lines.extend(_worker_exit_lines(s))
    return "\n".join(lines)


def _worker_exit_lines(s: dict[str, Any]) -> list[str]:
    """The unexpected worker exits of the last 15 minutes: those of the image the stack serves are its problem now,
    with the runbook section its log points to. Past: those of an image it no longer serves (a rollback took it
    off), and those of the image it serves from before its host took that image again (a rebuild of the same digest,
    redeployed: the runbook's first aid) or before a later worker of it got ready for jobs."""
    exits = s.get("worker_exits") or []
    current = [e for e in exits if not e.get("past")]
    others = [e for e in exits if e.get("past") and e.get("past_by") in (None, "another_image")]
    earlier = [e for e in exits if e.get("past") and e.get("past_by") not in (None, "another_image")]
    lines = []
    if current:
        last = current[-1]
        ran = f", image {last['image']}" if last.get("image") else ""
        if last.get("cause") == "no_models":
            # What its preflight_failed line holds: the runbook's words (the checkpoint loader folder is empty) and
            # the model files it found; not that it found none.
            present = last.get("models_present")
            found = f" ({present} model file{'' if present == 1 else 's'} present)" if isinstance(present, int) else ""
            why = f"its preflight found models missing, its checkpoint folder empty{found}: {NO_MODELS_SECTION}"
        elif last.get("cause") == "preflight_failed":
            why = f"its preflight failed: its log says why ({NO_MODELS_SECTION})"
        else:
            why = f"a worker that exits at start with preflight_failed found models missing ({NO_MODELS_SECTION})"
        lines.append(f"  {'worker exits':<22} {_count(current)} unexpected in the last "
                     f"15 min (newest: {last['worker']}, code {last['returncode']}, {last['ts']}{ran}): see "
                     f"{s['logs_dir']}/worker-{last['worker']}.log; {why}")
    if earlier:
        last = earlier[-1]
        since = (f"{s['stack']} redeployed it ({last.get('past_since')})" if last.get("past_by") == "redeploy" else
                 f"a later worker of it passed its preflight and got ready for jobs ({last.get('past_since')})")
        lines.append(f"  {'earlier worker exits':<22} {_count(earlier)} in the last 15 min of {last['image']}, which "
                     f"{s['stack']} serves, from before {since}: past, not its problem now (newest: {last['worker']}, "
                     f"code {last['returncode']}, {last['ts']})")
    if others:
        last = others[-1]
        images = ", ".join(sorted({str(e["image"]) for e in others}))
        lines.append(f"  {'earlier worker exits':<22} {_count(others)} in the last 15 min "
                     f"of {images}, which {s['stack']} no longer serves (it serves {s.get('image') or '-'}): past, "
                     f"not its problem now (newest: {last['worker']}, code {last['returncode']}, {last['ts']})")
    return lines


def _count(exits: list[dict[str, Any]]) -> str:
    """How many: five is as many as `status` keeps of each kind, so it may stand for more."""
    return f"{len(exits)}{'+' if len(exits) == 5 else ''}"


def cmd_status(args: argparse.Namespace) -> int:
    if getattr(args, "target", "local") == "cloud":
        raise GoldgateError(cloud_status_refusal(args.stack))
    platform = _platform(args)
    _note_missing_home(platform)
    if args.stack:
        emit(args, _with_verdicts(platform, platform.status(args.stack)), _render_status)
        return 0
    # Every stack: one whose state cannot be read is named with the reason, and the others are still shown.
    data: list[dict[str, Any]] = []
    for stack in specs.local_stack_names(platform.stacks_file):
        try:
            data.append(_with_verdicts(platform, platform.status(stack)))
        except GoldgateError as exc:  # its state, or its section of the stacks file edited since it started
            data.append({"stack": stack, "running": None, "error": str(exc)})
    data += [{"stack": stack, "running": True, "error": _left_running(platform, stack, pid)}
             for stack, pid in _hosts_off_file(platform).items()]
    emit(args, data, _render_status)
    return 1 if any("error" in s for s in data) else 0


def cloud_status_refusal(stack: str | None) -> str:
    """Why `goldgate status --target cloud` answers nothing, and what to run instead. Status reads a local stack's host,
    workers and their logs under --home; of a cloud stack RunPod's API gives the endpoint (its image against the pin,
    its rollout, max workers, /health), which the cloud checklist reads and judges already, and no worker logs."""
    name = stack if stack and re.fullmatch(r"[a-z][a-z0-9-]{1,40}", stack) else "<stack>"   # a stack file's names
    return (f"`goldgate status` reads the local stacks only (their hosts, workers and worker logs under --home): for "
            f"a cloud stack, `goldgate checklist {name} --target cloud` reads its endpoint (its image against the pin, "
            "rollout, workers and /health), and RunPod's console holds its worker logs; for the local stacks give "
            "--target local (or unset GOLDGATE_TARGET)")


def _with_verdicts(platform: LocalPlatform, status: StackStatus) -> dict[str, Any]:
    """A stack's status with `unverified`: for a PROD, why the release it serves (or, down, is pinned to) is none a
    promotion or rollback verified there, when it is not one and no SMOKE FAILED line already says what is wrong with
    it (pinned by hand, a ledger that lost its entries, a promotion cut short): else None."""
    data = status.to_dict()
    data["unverified"] = None
    image = data.get("image")
    data["failed_run"] = _failed_run(platform, status.stack, image, data.get("smoke_failed"))
    if not isinstance(image, str) or data.get("smoke_failed") or data.get("error"):
        return data
    try:
        if specs.load_local(status.stack, platform.stacks_file).role != "prod":
            return data
        staging = next((name for name in specs.local_stack_names(platform.stacks_file)
                        if specs.load_local(name, platform.stacks_file).role == "staging"), "staging")
    except GoldgateError:   # its section edited away since it started: `status` names that elsewhere
        return data
    from goldgate.release.history import unverified_on_prod  # only `status` of a PROD reads the ledger

    data["unverified"] = unverified_on_prod(platform.home, status.stack, image,
                                            "serves" if data.get("running") else "is pinned to", staging)
    return data


def _failed_run(platform: LocalPlatform, stack: str, image: Any, said: Any) -> str | None:
    """Which kind of golden run PROD's `smoke_failed` sentence `said` is of: "smoke", "case" (`golden --case`) or
    "full", for the row's label; None when there is no such sentence. The run is read again as the platform found it
    (the ledger's last golden run that judged the image), and taken only if the sentence names it as that run, by its
    ledger seq: a run recorded between the two reads leaves the kind unsaid ("unknown") rather than mislabelled."""
    if not said or not isinstance(image, str):
        return None
    from goldgate.release.ledger import golden_run_named, last_golden_run  # only for a failed run on PROD

    run = last_golden_run(platform.home, stack, image)
    if run is None or f"whose {golden_run_named(run)} failed there (ledger #{run.get('seq')}," not in said:
        return "unknown"
    return "case" if run.get("only_cases") else "smoke" if run.get("suite") == "smoke" else "full"


def _note_missing_home(platform: LocalPlatform) -> None:
    """A state dir that does not exist says every stack is down: run from another directory than the checkout
    that started them (the default is ./.goldgate), that is no news but a wrong place, so say so on stderr."""
    if not platform.home.exists():
        progress(f"no state dir at {platform.home}: goldgate keeps its stacks' state in ./.goldgate of the directory "
                 "it runs in (or GOLDGATE_HOME, --home); run it from the checkout that started them")


class ApiClient:
    """The public API of one running local stack, as a client would use it (`at`: any stack's, by its URL)."""

    def __init__(self, platform: LocalPlatform, stack: str, timeout_s: float = 30.0) -> None:
        state = platform.require_running(stack)
        self._open(state["api_url"], platform.api_token(stack), timeout_s)

    @classmethod
    def at(cls, api_url: str, token: str, timeout_s: float = 30.0) -> ApiClient:
        client = cls.__new__(cls)
        client._open(api_url, token, timeout_s)
        return client

    def _open(self, api_url: str, token: str, timeout_s: float) -> None:
        self.base = api_url
        self.http = httpx.Client(base_url=self.base, timeout=timeout_s, verify=tls_context(),
                                 headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            resp = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise GoldgateError(f"{method} {self.base}{path} failed: {exc}") from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code >= 400:
            raise GoldgateError(f"{method} {path} answered {resp.status_code}: {_error_text(resp, body)}")
        return body

    def download(self, url: str, key: str) -> bytes:
        """A result image's bytes from its signed link (`results[].url`); the link itself is never shown: its
        signature is a credential for the image. The bearer token goes with it only to the API's own origin (as
        the golden runner's fetch): a link naming another host is fetched without it."""
        from goldgate.release.golden import same_origin  # only a download needs it: the CLI starts without it

        absolute = urljoin(self.base.rstrip("/") + "/", url)
        try:
            if same_origin(absolute, self.base):
                resp = self.http.get(absolute)
            else:
                resp = httpx.get(absolute, timeout=self.http.timeout, verify=tls_context())
        except httpx.HTTPError as exc:
            reason = str(exc).replace(absolute, "its link").replace(url, "its link") or type(exc).__name__
            raise GoldgateError(f"cannot download result {key} from {self.base}: {reason}; is the stack still up? "
                                "`goldgate status` says") from None
        if resp.status_code >= 400:
            raise GoldgateError(f"the download of result {key} answered {resp.status_code}: {_error_text(resp)}")
        return resp.content

    def wait_terminal(self, job_id: str, timeout_s: float) -> dict[str, Any]:
        """Wait for the webhook-driven outcome by reading our own API (never RunPod's)."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.call("GET", f"/api/status/{job_id}")
            if status["status"] not in ("queued", "in_progress"):
                return status
            if time.monotonic() > deadline:
                return status
            time.sleep(0.25)


def _error_text(resp: httpx.Response, body: Any = None) -> str:
    """The service's own words for an error answer ({"error": {"message"}}), else the start of the body."""
    if body is None:
        try:
            body = resp.json()
        except ValueError:
            body = {}
    err = body.get("error", {}) if isinstance(body, dict) else {}
    message = err.get("message") if isinstance(err, dict) else None
    return message or resp.text[:200]


def stack_api(args: argparse.Namespace, stack: str) -> ApiClient:
    """The API of `stack` on the command's target: a local stack's from its state (it must be up), a cloud stack's
    from its Pulumi outputs (`api_url`) and token (GOLDGATE_API_TOKEN_<STACK>, GOLDGATE_API_TOKEN, or the stack's
    goldgate:apiToken secret), as the golden runs reach it. Under GOLDGATE_TARGET=cloud, `recover` told the
    operator to `goldgate up prod`: a local PROD, not the one whose job was stuck."""
    if getattr(args, "target", "local") != "cloud":
        return ApiClient(_platform(args), stack)
    from goldgate.release.deployers import for_target
    from goldgate.release.deployers.cloud import CloudDeployFailed

    home = Path(args.home).resolve() if getattr(args, "home", None) else default_home()
    try:
        access = for_target("cloud", home).api_access(stack)
    except CloudDeployFailed as exc:
        raise GoldgateError(f"cannot reach the API of cloud stack {stack}: {exc}") from None
    return ApiClient.at(access.api_url, access.token)


def cmd_recover(args: argparse.Namespace) -> int:
    job_id = _job_id(args.job_id)  # before anything is read: it becomes a path segment of the URL
    runpod_job_id = _runpod_job_id(args.runpod_job_id) if args.runpod_job_id is not None else None
    api = stack_api(args, args.stack)
    # It goes in the body, never into the URL; the service checks it again (its own rule, the one used here).
    body = {"json": {"runpod_job_id": runpod_job_id}} if runpod_job_id is not None else {}
    try:
        result = api.call("POST", f"/api/admin/recover/{job_id}", **body)
        error = None if args.json or result.get("status") == "completed" else _job_error(api, job_id)
    finally:
        api.close()
    emit(args, result, lambda r: _recovered_line(job_id, r, error, args.stack, getattr(args, "target", "local")))
    return 0


def _job_error(api: ApiClient, job_id: str) -> object:
    """Why the job failed, from its status: the recovery's answer names the outcome only. The recovery is done
    by now, so a status read that fails leaves the reason out rather than failing the command."""
    try:
        return api.call("GET", f"/api/status/{job_id}").get("error")
    except GoldgateError:
        return None


def _recovered_line(job_id: str, answer: dict, error: object, stack: str, target: str = "local") -> str:
    line = f"{job_id}: {answer.get('status')} ({answer.get('reason', '')})"
    from service.jobs import TERMINAL  # the service's own list of states a job ends in

    if answer.get("reason") == "duplicate" and answer.get("status") in TERMINAL and answer.get("applied") is False:
        # "completed (duplicate)" alone read as a failed recovery to whoever recovered a job that was fine.
        line += ": it had already ended so (its webhook, or an earlier recover, settled it); nothing changed"
    if answer.get("recovered_from") == "result_store":
        line += ", from the outcome its worker stored beside its images (RunPod no longer knows the job)"
    if answer.get("runpod_status") in ("IN_QUEUE", "IN_PROGRESS"):
        # "queued (duplicate)" read as "nothing found"; the operator came here believing a webhook was lost.
        where = (f"`goldgate status {stack}` shows workers exiting at start (preflight_failed" if target == "local" else
                 f"`goldgate stuck {stack} --target cloud` reads the endpoint's /health (workers unhealthy")
        line += (f"\n  RunPod still has it {answer['runpod_status']}: no webhook was lost, the job has not ended. If no "
                 f"worker takes it, {where}: docs/RUNBOOK.md, \"No checkpoint models appear to be available\")")
    # The error is the service's answer: its newlines printed as \n, as every value `emit` prints (a reason that
    # spanned lines could write a line that reads as recover's own, the RunPod line above).
    return line + (f"\n  error: {escape_controls(str(error))}" if error else "")


def cmd_demo(args: argparse.Namespace) -> int:
    platform = _platform(args)
    started = time.monotonic()
    out_dir = Path(args.out) if args.out else platform.home / "demo-results"
    if args.out and out_dir.exists() and not out_dir.is_dir():  # found out now, not after the stack came up
        raise GoldgateError(f"--out {args.out} is not a directory; name a directory for the result images")
    ensure_up(platform, args.stack)
    api = ApiClient(platform, args.stack)
    try:
        make_dirs(out_dir)
    except OSError as exc:
        api.close()
        # The default is under the state home, which may be read-only (a running stack is still served from there):
        # the way out is a directory of the user's own, named with --out.
        way = "give --out another directory" if args.out else \
            "save the result images elsewhere with `--out DIR` (a directory you can write)"
        raise GoldgateError(f"cannot create the results directory {out_dir}: {exc.strerror or exc}; nothing was "
                            f"queued: {way}") from None
    rows = []
    try:
        workflows = api.call("GET", "/api/workflows")["workflows"]
        jobs = []
        for wf in workflows:
            inputs = {p["name"]: _demo_image(api) if p["type"] == "image" else _demo_value(p)
                      for p in wf["parameters"] if p["required"]}
            created = api.call("POST", "/api/queue/create", json={"workflow_id": wf["id"], "inputs": inputs})
            progress(f"queued {wf['id']} as job {created['job_id']}")
            jobs.append((wf, created))
        for wf, created in jobs:
            status = api.wait_terminal(created["job_id"], args.timeout)
            files = []
            for result in status.get("results") or []:
                content = api.download(result["url"], result["key"])
                target = out_dir / result["key"].replace("/", "_")
                _save_result(target, content)
                files.append(str(target))
            rows.append({"workflow": wf["id"], "job_id": created["job_id"], "status": status["status"],
                         "e2e_ms": (status.get("timings") or {}).get("e2e_ms"), "images": len(files),
                         "files": files, "error": status.get("error")})
    finally:
        api.close()
    summary = {"stack": args.stack, "jobs": rows, "results_dir": str(out_dir),
               "seconds": round(time.monotonic() - started, 1),
               "all_completed": all(r["status"] == "completed" and r["images"] for r in rows)}

    def render(s: dict[str, Any]) -> str:
        head = table(s["jobs"], ["workflow", "job_id", "status", "e2e_ms", "images", "error"])
        verdict = "all jobs completed" if s["all_completed"] else "SOME JOBS DID NOT COMPLETE"
        return f"{head}\n\n{verdict}; results in {s['results_dir']} ({s['seconds']} s). " \
               f"The stack keeps running: `goldgate status {s['stack']}`, `goldgate down {s['stack']}`."

    emit(args, summary, render)
    return 0 if summary["all_completed"] else 1


def _save_result(target: Path, content: bytes) -> None:
    """A result image saved as a file of its own, 0644 less the umask: under umask 000 write_bytes made it 0666,
    writable by every user, in a results directory make_dirs keeps from being so. A file already there keeps its
    mode through the write (O_TRUNC changes none), so one saved 0666 before stayed writable by every user: it loses
    what a new file would not get (group and other write, execute, set-id bits) before it is emptied, and one whose
    mode is not this user's to change is refused untouched. A link or a named pipe in its place (a --out directory
    others write to) is refused, not followed or waited on."""
    try:
        fd = open_regular(target, os.O_WRONLY | os.O_CREAT, 0o644, follow_symlinks=False)
    except NotARegularFile as exc:
        raise GoldgateError(f"cannot save a result to {target}: {exc.kind} is there, not a regular file; move it "
                            "out of the way, or give --out another directory") from None
    with os.fdopen(fd, "wb") as fh:
        mode = os.fstat(fd).st_mode & 0o7777
        if mode & ~0o644:
            try:
                os.fchmod(fd, mode & 0o644)
            except PermissionError:
                raise GoldgateError(f"cannot save a result to {target}: a file of another user is there, mode "
                                    f"{mode:04o} (more than a result is given: 0644) and not this user's to change; "
                                    "nothing was written to it: remove it, or give --out another directory") from None
        os.ftruncate(fd, 0)
        fh.write(content)


def _demo_image(api: ApiClient) -> str:
    """The key of an image uploaded for a workflow that takes one (a parameter of type image: `POST /api/inputs`, as a
    client sends one): a 768x512 gradient, drawn here so that the demo needs no file of the checkout's."""
    import io

    from PIL import Image  # only a workflow that takes an image needs it: the CLI starts without it

    picture = Image.linear_gradient("L").resize((768, 512)).convert("RGB")
    body = io.BytesIO()
    picture.save(body, format="PNG")
    return api.call("POST", "/api/inputs", content=body.getvalue(), headers={"Content-Type": "image/png"})["key"]


def _demo_value(param: dict[str, Any]) -> Any:
    if param.get("default") is not None:
        return param["default"]
    if param.get("choices"):
        return param["choices"][0]
    kind = param["type"]
    if kind == "string":
        return "a lighthouse on a cliff at golden hour, oil painting"
    if kind in ("integer", "number"):
        return param.get("min") or 1
    return True


def cmd_doctor(args: argparse.Namespace) -> int:
    # Each names what to check: given two, doctor checked one (the stack's image before --model-root, --image before
    # --stack), said "worker preflight: OK" and exited 0 with the other never looked at.
    given = [flag for flag, value in (("--stack", args.stack), ("--image", args.image),
                                      ("--model-root", args.model_root)) if value is not None]
    if len(given) > 1:
        raise GoldgateError(f"{', '.join(given[:-1])} and {given[-1]} each name what to check (a local stack's image, "
                            "an image, a model root): give one of them, and run doctor again for the other")
    from images.worker import preflight

    platform = _platform(args)
    if args.image or args.stack:
        image = args.image or platform.pinned_image(args.stack)
        if not image:
            # Where `goldgate doctor` (bare) points a newcomer: say how the stack gets an image to check.
            how = ("PROD takes one by `goldgate promote` (or `goldgate release`)"
                   if specs.load_local(args.stack, platform.stacks_file).role == "prod"
                   else f"`goldgate up {args.stack}` pins the working tree's image")
            raise StateError(f"stack {args.stack} has no image deployed: {how}, then run this again")
        snapshot = image_store.resolve(image, platform.home)
        worker, roots = snapshot / "worker", [str(snapshot / "models")]
    else:
        roots = [root for given in args.model_root or [] for root in given]
        worker, roots = WORKER_SOURCE, roots or ["/comfyui/models", "/workspace/ComfyUI/models"]
    report = preflight.run_preflight(worker / "models.yaml", worker / "workflows", roots,
                                     verify_sha256=args.sha256)
    # Run bare on a machine that is no worker (a newcomer's, the first command of the runbook's list): say what
    # it checked, and where a local stack's models are checked, rather than leave "FAILED" unexplained.
    # First, not after the thirty lines of a report that is about folders this machine does not have.
    hint = ("" if args.image or args.stack or args.model_root or report.roots_present else
            f"no model root on this machine ({', '.join(roots)}): this checks a worker image's own folders; for a "
            "local stack's image run `goldgate doctor --stack staging`\n\n")
    # The report renders itself from what it read on disk (file and link names, manifest values): from its one-line
    # copy, as `emit` hands every render its data.
    emit(args, report.to_dict(), lambda _: hint + one_line_values(report).render())
    return 0 if report.ok else 1


def _runpod_job_id(text: str) -> str:
    """--runpod-job-id checked by the service's own rule (service/recover.py) before any stack is reached: a value it
    refuses would otherwise come back as the service's 400, or as a 413 for the request's size when it is long."""
    from service.recover import RUNPOD_JOB_ID

    if not RUNPOD_JOB_ID.fullmatch(text):
        raise GoldgateError(f"--runpod-job-id {text[:80]!r}{'…' if len(text) > 80 else ''} ({len(text)} characters) is "
                            "not a RunPod job id: 1 to 128 letters, digits, '.', '_' or '-', the first a letter or "
                            f"digit (the service's rule, {RUNPOD_JOB_ID.pattern}), e.g. <uuid>-u1 as the "
                            "job.runpod_id_unrecorded log line names it")
    return text


def _job_id(text: str) -> str:
    """A service job id (32 hex, as `POST /api/queue/create` answered): it becomes a URL path segment, so `../`,
    `?` or `#` would address another route."""
    value = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{32}", value):
        raise GoldgateError(f"{text[:80]!r}{'…' if len(text) > 80 else ''} is not a job id: 32 hex characters, as "
                            "POST /api/queue/create answered (`job_id`)")
    return value
