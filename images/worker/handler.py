"""The RunPod handler: job input -> ComfyUI graph -> images in R2 -> output (docs/INTERFACES.md).

Entry point: `python -m <pkg>.handler` runs `runpod.serverless.start` (cloud mode when RunPod's
webhook variables are set, `--test_input` for a local run).
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import json
import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from . import sdk_logs
from .comfy_client import (
    ComfyCancelled,
    ComfyClient,
    ComfyDown,
    ComfyError,
    ComfyGpuFault,
    ComfyNotReady,
    ComfyStuck,
    PromptRejected,
)
from .config import ConfigError, WorkerConfig, load_config
from .first_aid import explain_rejection
from .job_input import JobInput, JobInputError, log_context, parse_job_input
from .logs import WorkerLog, error_field
from .manifest import Manifest, ManifestError, load_manifest
from .png import NotAPngError, png_size
from .storage import ResultStore, StorageError
from .workflows import Workflow, WorkflowError, load_workflows

PACKAGE_DIR = Path(__file__).resolve().parent
CONTENT_TYPES = {".png": "image/png"}
# Stored under the job's result prefix next to its images: what a recovery reads once RunPod has forgotten the job
# (docs/INTERFACES.md, "Worker output").
OUTCOME_FILE = "outcome.json"
CANCEL_GRACE_S = 10.0  # how long a cancelled job may take to withdraw its prompt before the SDK moves on
# RunPod stores the error and the service shows it; a first-aid line fits well within this.
MAX_ERROR_CHARS = 2000
# The handler's stop signal reaches run_job through the context asyncio.to_thread copies into the thread,
# so run_job keeps the (job, runtime) call that wrappers of it (the release tests' broken candidates) make.
_job_stop: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("job_stop", default=None)


@dataclass(frozen=True)
class WorkerRuntime:
    """What a job needs, built once per worker process."""

    config: WorkerConfig
    workflows: dict[str, Workflow]
    manifest: Manifest | None
    comfy: ComfyClient
    store: ResultStore
    log: WorkerLog


def build_runtime(config: WorkerConfig, stream: IO[str] | None = None, package_dir: Path = PACKAGE_DIR,
                  store: ResultStore | None = None, poll_interval_s: float = 0.2) -> WorkerRuntime:
    """Raises ConfigError/WorkflowError/ManifestError with an operator message when the worker cannot run."""
    workflows = load_workflows(package_dir / "workflows")
    manifest = load_manifest(package_dir / "models.yaml")
    log = WorkerLog(stream, secrets=config.secrets(), stack=config.stack,
                    worker_image_tag=config.worker_image_tag, workflow_version=config.workflow_version)
    return WorkerRuntime(config=config, workflows=workflows, manifest=manifest,
                         comfy=ComfyClient(config.comfy_url, poll_interval_s, pid=config.comfy_pid,
                                           stack=config.stack),
                         store=store or ResultStore(config.require_storage()), log=log)


class _JobFailed(Exception):
    """A fault already explained in one operator line."""


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _stopped(stop: threading.Event | None, doing: str) -> None:
    """Raises ComfyCancelled when the job was stopped (RunPod cancelled it or its executionTimeout passed)."""
    if stop is not None and stop.is_set():
        raise ComfyCancelled(f"job stopped {doing}")


def _upload(job: JobInput, runtime: WorkerRuntime, log: WorkerLog, images: list,
            stop: threading.Event | None = None, created: list[str] | None = None) -> list[dict[str, Any]]:
    """Every image is fetched and checked before the first upload, and an upload that fails removes what
    this attempt stored: a failed job leaves no result behind for its retry to collide with. An image an
    earlier run of the same render stored under a key is kept, so running a job again gives the same results.
    A job stopped while its images upload fails the same way: RunPod has ended it (CANCELLED, TIMED_OUT),
    so what it stored is no result of a job anyone will read. `created` gets the keys this attempt created."""
    checked = []
    for image in images:
        suffix = Path(image.filename).suffix.lower()
        content_type = CONTENT_TYPES.get(suffix)
        if content_type is None:
            raise _JobFailed(f"ComfyUI output {image.filename} is not a PNG; this worker uploads PNG only "
                             f"(the workflow should end in SaveImage)")
        data = runtime.comfy.fetch_image(image)
        try:
            width, height = png_size(data)
        except NotAPngError as exc:
            raise _JobFailed(f"ComfyUI output {image.filename}: {exc}") from None
        checked.append((suffix, content_type, data, width, height))
    results: list[dict[str, Any]] = []
    created = [] if created is None else created
    try:
        for index, (suffix, content_type, data, width, height) in enumerate(checked):
            _stopped(stop, f"while its images uploaded ({index} of {len(checked)} stored); what it stored was "
                           f"removed")
            key = f"{job.result_prefix}{index}{suffix}"
            stored = runtime.store.put_create_only(key, data, content_type, job.render_id())
            if stored.created:
                created.append(key)
            if stored.kept is not None:
                # RunPod ran this job before (a /retry, a worker that lost its heartbeat) and that run's
                # image stands: the output describes what the key holds, not this run's render.
                width, height = png_size(stored.kept)
                log.warning("image_kept_from_earlier_run", message=f"{key} holds this job's image from an "
                            f"earlier run; kept it instead of this run's render", data={"key": key})
            log.info("image_uploaded", message=f"{key} ({stored.bytes} bytes)",
                     data={"key": key, "bytes": stored.bytes, "sha256": stored.sha256, "width": width,
                           "height": height, "created": stored.created})
            results.append({"key": key, "content_type": stored.content_type, "bytes": stored.bytes,
                            "sha256": stored.sha256, "width": width, "height": height})
        _stopped(stop, f"while its images uploaded (all {len(checked)} stored); what it stored was removed")
    except BaseException:
        _remove_created(runtime, log, created, "failed")
        raise
    return results


def _remove_created(runtime: WorkerRuntime, log: WorkerLog, created: list[str], after: str) -> None:
    """Removes what this run stored once the job will not complete (it `after`: failed, was stopped): no outcome
    describes it, and a recovery must not read it as a result. Best effort: what stays is named in a warning."""
    left = runtime.store.delete_created(created)
    if left:
        log.warning("upload_cleanup_failed", message=f"could not remove {', '.join(left)} after the job {after}",
                    data={"keys": left})


def _saved_apart(graph: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The graph with every SaveImage writing under a folder of this run's own (`<run_id>/<prefix>`), which
    `_discard_saved` removes. ComfyUI answers a graph identical to one it ran from its cache, naming that run's
    files (removed by now): a prefix of its own makes SaveImage run again, on the cached pixels."""
    graph = copy.deepcopy(graph)
    for node in graph.values():
        if node.get("class_type") == "SaveImage" and isinstance(node["inputs"].get("filename_prefix"), str):
            node["inputs"]["filename_prefix"] = f"{run_id}/{node['inputs']['filename_prefix']}"
    return graph


def _discard_saved(output_dir: Path, run_id: str, log: WorkerLog) -> None:
    """Removes this run's folder from ComfyUI's output folder, whatever the job's outcome. ComfyUI deletes no
    output, and a warm worker that keeps every image fills its container disk until SaveImage fails every job.
    Nothing to do when ComfyUI's output folder is not on this machine."""
    saved = output_dir / run_id
    shutil.rmtree(saved, ignore_errors=True)
    if saved.exists():
        log.warning("outputs_not_removed", message=f"could not remove {saved} (this job's images in ComfyUI's "
                                                   f"output folder); they stay on the worker's disk",
                    data={"path": str(saved)})


def _with_input_images(job: JobInput, runtime: WorkerRuntime, log: WorkerLog, stop: threading.Event | None,
                       uploaded: list[str]) -> dict[str, Any]:
    """The job's graph with each image parameter's node input naming the file ComfyUI loads: the object the
    parameter's key names, read from R2 and put into ComfyUI's input folder as `<job_id>-<parameter>.<ext>`. A run
    again of the job sends the same name and replaces its own earlier file; another job's name is its own. The
    graph the render id hashes keeps the keys: every run of the job is the same render. `uploaded` gets the names."""
    graph = job.graph
    for param in job.workflow.parameters:
        if param.type != "image":
            continue
        key = job.values[param.name]
        _stopped(stop, f"before its input image {key} was read; nothing was rendered")
        image = runtime.store.read_input(key)
        name = runtime.comfy.upload_image(f"{job.job_id}-{param.name}{image.suffix}", image.data, image.content_type)
        uploaded.append(name)
        graph = copy.deepcopy(graph) if graph is job.graph else graph
        graph[param.node]["inputs"][param.input] = name
        log.info("job.input_image.loaded", message=f"{key} ({len(image.data)} bytes) is ComfyUI's input {name}",
                 data={"key": key, "bytes": len(image.data), "content_type": image.content_type,
                       "comfy_name": name, "parameter": param.name})
    return graph


def _discard_inputs(input_dir: Path, names: list[str], log: WorkerLog) -> None:
    """Removes the job's input images from ComfyUI's input folder (COMFY_INPUT_DIR), whatever the job's outcome:
    ComfyUI deletes no upload, and a warm worker keeping each job's input fills its disk. Nothing to do when that
    folder is not on this machine."""
    for name in names:
        path = input_dir / name
        if not path.resolve().is_relative_to(input_dir.resolve()):
            continue  # the name ComfyUI answered leads out of its input folder: nothing of the job's is there
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("inputs_not_removed", message=f"could not remove {path} (this job's input image in "
                                                      f"ComfyUI's input folder: {exc.strerror}); it stays on the "
                                                      f"worker's disk", data={"path": str(path)})


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _run(job: JobInput, runtime: WorkerRuntime, log: WorkerLog, started: float,
         stop: threading.Event | None, created: list[str]) -> dict[str, Any]:
    timings: dict[str, int] = {}
    # COMFY_JOB_TIMEOUT_S counts from the job's start, cold start included, so the worker's own clear
    # error (and its cancel of the prompt) comes before RunPod's executionTimeout ends the job silently.
    deadline = started + runtime.config.comfy_job_timeout_s
    waited = runtime.comfy.wait_ready(min(runtime.config.comfy_ready_timeout_s, _left(deadline)), stop)
    timings["comfy_wait_ms"] = _ms(waited)
    log.info("comfy_ready", duration_ms=_ms(waited))

    inputs: list[str] = []
    try:
        graph = _with_input_images(job, runtime, log, stop, inputs)
        if inputs:  # a stop that came while an image was read or put into ComfyUI: queue nothing
            _stopped(stop, f"while its input images loaded ({len(inputs)} put into ComfyUI); nothing was queued")
        t = time.monotonic()
        run_id = str(uuid.uuid4())  # names the prompt (ComfyUI takes it) and the folder its images are saved in
        try:
            prompt_id = runtime.comfy.queue_prompt(_saved_apart(graph, run_id), client_id=uuid.uuid4().hex,
                                                   prompt_id=run_id)
        except PromptRejected as rejected:
            raise _JobFailed(explain_rejection(rejected, graph, runtime.config.model_roots, runtime.manifest,
                                               job.workflow, job.values, runtime.config.stack)) from None
        timings["queue_ms"] = _ms(time.monotonic() - t)
        log.info("prompt_queued", data={"prompt_id": prompt_id})
        return _finish(job, runtime, log, started, stop, created, timings, deadline, prompt_id, run_id)
    finally:
        _discard_inputs(Path(runtime.config.comfy_input_dir), inputs, log)


def _finish(job: JobInput, runtime: WorkerRuntime, log: WorkerLog, started: float, stop: threading.Event | None,
            created: list[str], timings: dict[str, int], deadline: float, prompt_id: str,
            run_id: str) -> dict[str, Any]:
    t = time.monotonic()
    try:
        images = runtime.comfy.wait_for_outputs(prompt_id, _left(deadline), stop)
        timings["inference_ms"] = _ms(time.monotonic() - t)
        log.info("prompt_completed", duration_ms=timings["inference_ms"], data={"prompt_id": prompt_id,
                                                                               "images": len(images)})
        if not images:
            raise _JobFailed(f"ComfyUI finished prompt {prompt_id} without saving an image "
                             f"(does workflow {job.workflow.version} end in SaveImage?)")

        _stopped(stop, f"after prompt {prompt_id} finished; nothing was uploaded")
        t = time.monotonic()
        results = _upload(job, runtime, log, images, stop, created)
        timings["upload_ms"] = _ms(time.monotonic() - t)
    finally:
        _discard_saved(Path(runtime.config.comfy_output_dir), run_id, log)
    timings["total_ms"] = _ms(time.monotonic() - started)
    return {"images": results, "timings": timings, "workflow_version": job.workflow.version,
            "worker_image_tag": runtime.config.worker_image_tag, "gpu_type": runtime.config.gpu_type}


def _store_outcome(job: JobInput, runtime: WorkerRuntime, log: WorkerLog, runpod_job_id: str | None,
                   output: dict[str, Any]) -> str | None:
    """Stores the output RunPod gets next to the images, create-only like them (a run again of the render keeps
    the earlier run's, which describes the images it kept). RunPod keeps a job's output 30 minutes: a recovery
    after that, its webhook lost, reads it here. The images are stored already, so a failed write only warns.
    Returns the key when this call created the object."""
    key = f"{job.result_prefix}{OUTCOME_FILE}"
    body = json.dumps({"runpod_job_id": runpod_job_id, "output": output}, sort_keys=True).encode()
    try:
        stored = runtime.store.put_create_only(key, body, "application/json", job.render_id())
    except StorageError as exc:
        log.warning("outcome_not_stored", message=f"{exc}; the job completed, but if its webhook is lost too, a "
                                                  f"recovery after RunPod forgets the job finds no result",
                    error=error_field(exc), data={"key": key})
        return None
    return key if stored.created else None


def _error(message: str, log: WorkerLog) -> dict[str, str]:
    """The output RunPod gets for a fault: the message with the worker's secrets masked as in its log
    lines, masked before it is cut (a cut secret would escape the mask), at most MAX_ERROR_CHARS long.
    One line, as docs/INTERFACES.md promises: what ComfyUI relays may not be (PyTorch's CUDA errors add
    lines of advice), so each run of whitespace, line breaks included, becomes one space."""
    message = " ".join(log.scrub(message).split())
    if len(message) > MAX_ERROR_CHARS:
        message = message[:MAX_ERROR_CHARS - 1] + "…"
    return {"error": message}


def run_job(job: dict[str, Any], runtime: WorkerRuntime, stop: threading.Event | None = None) -> dict[str, Any]:
    """Runs one RunPod job; every fault comes back as {"error": "<one line>"} (plus "refresh_worker": True
    when this worker cannot render again), never as an exception, and goes through `_error`. Setting `stop`
    (the job was cancelled) withdraws its prompt from ComfyUI and skips the upload."""
    stop = stop if stop is not None else _job_stop.get()
    started = time.monotonic()
    raw = job.get("input") if isinstance(job, dict) else None
    runpod_job_id = job.get("id") if isinstance(job, dict) and isinstance(job.get("id"), str) else None
    log = runtime.log.bind(runpod_job_id=runpod_job_id, **log_context(raw))
    log.info("job_started")
    try:
        parsed = parse_job_input(raw, runtime.workflows)
    except JobInputError as exc:
        log.warning("job_rejected", message=str(exc), status="FAILED", reason="invalid_input",
                    error=error_field(exc))
        return _error(str(exc), log)
    log = log.bind(workflow_version=parsed.workflow.version)
    created: list[str] = []
    try:
        output = _run(parsed, runtime, log, started, stop, created)
        outcome = _store_outcome(parsed, runtime, log, runpod_job_id, output)
        if stop is not None and stop.is_set():
            # RunPod stopped the job while its outcome was stored: it reports the job CANCELLED or TIMED_OUT and
            # drops this output, so a recovery must not find an outcome (and images) that say it completed.
            created += [outcome] if outcome else []
            _remove_created(runtime, log, created, "was stopped")
            raise ComfyCancelled("job stopped while its outcome was stored; what it stored was removed")
    except ComfyCancelled as exc:
        log.warning("job_cancelled", message=str(exc), status="CANCELLED",
                    duration_ms=_ms(time.monotonic() - started))
        return _error(str(exc), log)
    except (ComfyDown, ComfyNotReady, ComfyGpuFault, ComfyStuck) as exc:
        # This worker cannot render again (its ComfyUI is gone, never came up, is held by a prompt that does not
        # stop, or its GPU is in a CUDA error state): RunPod replaces it after this job instead of handing it
        # more jobs that fail the same way.
        message = f"{exc}; the worker asks RunPod to replace it"
        log.error("job_failed", message=message, status="FAILED", duration_ms=_ms(time.monotonic() - started),
                  error=error_field(exc), data={"refresh_worker": True})
        return {**_error(message, log), "refresh_worker": True}
    except (_JobFailed, ComfyError, StorageError) as exc:
        log.error("job_failed", message=str(exc), status="FAILED", duration_ms=_ms(time.monotonic() - started),
                  error=error_field(exc))
        return _error(str(exc), log)
    except Exception as exc:  # noqa: BLE001 - the job must fail with a line, not take the worker down
        message = f"internal worker error ({type(exc).__name__}): {exc}; see the worker log"
        log.error("job_failed", message=message, status="FAILED", error=error_field(exc))
        return _error(message, log)
    log.info("job_completed", status="COMPLETED", duration_ms=output["timings"]["total_ms"],
             data={"images": [i["key"] for i in output["images"]], "timings": output["timings"]})
    return output


_runtime: WorkerRuntime | None = None


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    """The function given to runpod.serverless.start; blocking work runs in a thread so the SDK loop
    keeps answering (heartbeat, SIGTERM) while ComfyUI renders."""
    if _runtime is None:
        return {"error": "worker runtime not initialised; start the worker with `python -m <pkg>.handler`"}
    stop = threading.Event()
    _job_stop.set(stop)  # this task's own context: the SDK runs each job in a task of its own
    work = asyncio.ensure_future(asyncio.to_thread(run_job, job, _runtime))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        # The SDK cancels this task when RunPod stops the job; the thread would render on regardless.
        stop.set()
        await asyncio.wait({work}, timeout=CANCEL_GRACE_S)
        raise


def main() -> None:
    global _runtime
    try:
        config = load_config()
        _runtime = build_runtime(config)
    except (ConfigError, WorkflowError, ManifestError) as exc:
        WorkerLog(sys.stderr).error("worker_cannot_start", message=f"worker: cannot start: {exc}",
                                    error=error_field(exc))
        sys.exit(2)
    # Before the SDK starts: its logger, prints, warnings and crashes must come out as v1 lines too.
    sdk_logs.install(_runtime.log)
    _runtime.log.info("worker_started", data={"workflows": sorted(w.version for w in _runtime.workflows.values()),
                                              "comfy_url": config.comfy_url, "model_roots": list(config.model_roots)})
    import runpod  # imported here so the rest of the package (preflight, tests) does not need the SDK loaded

    runpod.serverless.start({"handler": handler})


if __name__ == "__main__":
    main()
