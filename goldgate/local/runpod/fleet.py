"""Worker processes for the emulator: start, stop, crash and reap real `runpod` SDK worker processes.

Each worker is a subprocess in its own session (so a kill also takes the SDK's heartbeat child) running
the command the launcher gives for the image its release names, with RunPod's worker environment. Each is
handed the fleet's lifeline (goldgate.local.lifeline): a worker that watches it ends with this process, even
when this process is SIGKILLed. Each also gets a scratch directory of its own as its TMPDIR (a container's /tmp):
the fleet outlives the worker, so the fleet removes it when it reaps the worker, however the worker ended
(SIGKILL, os._exit, a crash), with whatever the ComfyUI emulator, the SDK or the handler left there. Each writes a
log of its own (worker-<id>.log); the logs of workers gone for `worker_log_max_age_s` are removed as the emulator runs
(`prune_logs`), so an endpoint that scales to zero between bursts for months does not fill the logs dir with them."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from goldgate.errors import SpecError
from goldgate.local.lifeline import Lifeline
from goldgate.local.runpod.backend import RunPodBackend, StartWorker, StopWorker
from goldgate.local.runpod.eventlog import EventLog, job_context
from goldgate.local.state import open_log, remove_old_worker_logs

Launcher = Callable[[str, dict[str, str]], tuple[list[str], dict[str, str]]]

# What a worker inherits from the emulator's own environment; everything else comes from the endpoint
# (and TMPDIR from the fleet: the worker's scratch directory).
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "SYSTEMROOT", "TZ")


def default_launcher(home: Path | None) -> Launcher:
    """Run the image's snapshot: `python -m goldgate.local.worker_process --snapshot <dir>`."""

    def launch(image_ref: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        from goldgate.local import image_store  # written alongside; imported late so tests need not have it

        snapshot = image_store.resolve(image_ref, home) if home is not None else image_store.resolve(image_ref)
        return [sys.executable, "-m", "goldgate.local.worker_process", "--snapshot", str(snapshot)], env

    return launch


def launcher_from_string(spec: str) -> Launcher:
    """'package.module:attribute' -> the launcher callable it names."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise SpecError(f"launcher {spec!r} must be 'package.module:function'")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise SpecError(f"launcher {spec!r} cannot be imported: {exc}") from None


@dataclass(frozen=True)
class WorkerUrls:
    """The per-endpoint URL templates RunPod gives workers (the SDK substitutes $ID / $RUNPOD_POD_ID)."""

    data_base: str  # http://127.0.0.1:PORT/v2

    def env(self, endpoint_id: str, gpu: str) -> dict[str, str]:
        base = f"{self.data_base}/{endpoint_id}"
        q = f"?gpu={gpu.replace(' ', '+')}"
        return {
            "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID{q}",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID{q}",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID{q}",
            "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID{q}",
        }


class WorkerFleet:
    """Executes the backend's scaling plan and tells it when a process exits."""

    def __init__(self, backend: RunPodBackend, launcher: Launcher, urls: WorkerUrls, worker_token: str,
                 logs_dir: Path, scratch_dir: Path, log: EventLog) -> None:
        self.backend = backend
        self.config = backend.config
        self.launcher = launcher
        self.urls = urls
        self.worker_token = worker_token
        self.logs_dir = logs_dir
        self.scratch_dir = scratch_dir  # <scratch_dir>/<worker id>: each worker's TMPDIR, removed when it is reaped
        self.log = log
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._expected_exit: set[str] = set()
        self._lock = threading.Lock()
        self.lifeline = Lifeline()

    def apply(self, actions: list[StartWorker | StopWorker]) -> None:
        for action in actions:
            if isinstance(action, StartWorker):
                threading.Thread(target=self._start, args=(action,), name=f"worker-start-{action.worker_id}",
                                 daemon=True).start()
            else:
                self.stop(action.worker_id, action.reason)

    def _start(self, action: StartWorker) -> None:
        if self.config.faults.cold_start_s > 0:
            time.sleep(self.config.faults.cold_start_s)  # a slow image pull before the container starts
        env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        env["TMPDIR"] = str(self.scratch_dir / action.worker_id)
        env["RUNPOD_LOG_LEVEL"] = "INFO"  # the SDK defaults to DEBUG; an endpoint's env may say otherwise
        # The snapshot holds only what its digest covers: no bytecode cache written into it (resolve drops any).
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(action.env)
        env.update(self.urls.env(action.endpoint_id, action.gpu_type or self.config.gpu_type))
        env.update({
            "RUNPOD_POD_ID": action.worker_id, "RUNPOD_POD_HOSTNAME": f"{action.worker_id}-local",
            "RUNPOD_ENDPOINT_ID": action.endpoint_id, "RUNPOD_AI_API_KEY": self.worker_token,
            "RUNPOD_GPU_COUNT": str(action.gpu_count), "RUNPOD_DC_ID": "LOCAL",
            "RUNPOD_PING_INTERVAL": str(self.config.ping_interval_ms),
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true", "RUNPOD_SKIP_GPU_CHECK": "true",
            "PYTHONUNBUFFERED": "1",
        })
        try:
            argv, env = self.launcher(action.image, env)
            env = {**env, **self.lifeline.child_env()}
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            (self.scratch_dir / action.worker_id).mkdir(parents=True, exist_ok=True)
            out = open_log(self.logs_dir / f"worker-{action.worker_id}.log", binary=True)
            try:
                proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True, close_fds=True, pass_fds=self.lifeline.pass_fds)
            finally:
                out.close()
        except Exception as exc:  # noqa: BLE001 -- any launcher failure becomes a logged, retried start
            self.log.error("worker.start_failed", worker=action.worker_id, image=action.image,
                           error=f"{type(exc).__name__}: {exc}")
            self._remove_scratch(action.worker_id)
            self.backend.worker_failed_to_start(action.worker_id, str(exc))
            return
        with self._lock:
            self._procs[action.worker_id] = proc
            stopping = action.worker_id not in self.backend.workers or self.backend.workers[action.worker_id].stopping
        self.log.info("worker.started", worker=action.worker_id, endpoint_id=action.endpoint_id,
                      image=action.image, pid=proc.pid)
        if stopping:
            self.stop(action.worker_id, "stopped while starting")

    def stop(self, worker_id: str, reason: str) -> None:
        """Graceful: SIGTERM the worker's session, SIGKILL after the grace period."""
        with self._lock:
            proc = self._procs.get(worker_id)
            self._expected_exit.add(worker_id)
        if proc is None:
            return  # not started yet: _start sees `stopping` and stops it
        self.log.info("worker.stopping", worker=worker_id, reason=reason)
        _signal_group(proc, signal.SIGTERM)
        # Only a worker still running: once it has exited (and reap has cleared its group), its pid may
        # already lead another process group. A daemon timer: it never holds a stopping host open.
        timer = threading.Timer(self.config.worker_stop_grace_s, _kill_if_running, args=(proc,))
        timer.daemon = True
        timer.start()

    def crash(self, worker_id: str, job_id: str) -> None:
        """Fault injection: SIGKILL the worker shortly after it took `job_id`."""

        def kill() -> None:
            with self._lock:
                proc = self._procs.get(worker_id)
            if proc is not None:
                # Named like the job's other lines: the service's job and trace, and the image that ran it.
                with self.backend.lock:
                    job = self.backend.jobs.get(job_id)
                    worker = self.backend.workers.get(worker_id)
                    context = job_context(job.input if job is not None else None)
                self.log.warning("worker.crash_injected", worker=worker_id, runpod_job_id=job_id, **context,
                                 worker_image_tag=worker.image if worker is not None else None)
                _signal_group(proc, signal.SIGKILL)

        threading.Timer(self.config.faults.crash_after_s, kill).start()

    def reap(self) -> None:
        """Report every exited process to the backend (called every tick)."""
        with self._lock:
            exited = [(wid, p) for wid, p in self._procs.items() if p.poll() is not None]
            for wid, _ in exited:
                del self._procs[wid]
        for wid, proc in exited:
            expected = wid in self._expected_exit
            self._expected_exit.discard(wid)
            _signal_group(proc, signal.SIGKILL)  # the SDK's heartbeat child must not outlive it
            self._remove_scratch(wid)
            with self.backend.lock:  # the image it ran: `goldgate status` tells a past image's exits from now's
                worker = self.backend.workers.get(wid)
                image = worker.image if worker is not None else None
            (self.log.info if expected else self.log.warning)(
                "worker.exited", worker=wid, returncode=proc.returncode, expected=expected, worker_image_tag=image)
            self.backend.worker_exited(wid, proc.returncode)

    def stop_all(self, timeout_s: float) -> None:
        with self._lock:
            procs = dict(self._procs)
            self._expected_exit.update(procs)
        for proc in procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in procs.values():
            try:
                proc.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                self.log.error("worker.unkillable", pid=proc.pid)
        self.reap()

    def prune_logs(self) -> int:
        """Remove the logs of workers that are gone (not running, not starting), untouched for
        `worker_log_max_age_s`; how many went. Only regular files named as the fleet names them."""
        with self._lock:
            live = set(self._procs) | self._expected_exit
        with self.backend.lock:
            live |= set(self.backend.workers)
        return remove_old_worker_logs(self.logs_dir, self.config.worker_log_max_age_s, keep=live)

    def _remove_scratch(self, worker_id: str) -> None:
        shutil.rmtree(self.scratch_dir / worker_id, ignore_errors=True)

    def pids(self) -> dict[str, int]:
        with self._lock:
            return {wid: p.pid for wid, p in self._procs.items()}


def _kill_if_running(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
