"""The RunPod emulator assembled: backend + HTTP shell + worker fleet + webhook dispatcher + a ticker.

    emu = RunPodEmulator(EmulatorConfig(api_key=key, logs_dir=logs), launcher=my_launcher).start()
    emu.api_base        # http://127.0.0.1:PORT/v2  (REST v2 control plane; ControlPlaneClient takes it)
    emu.endpoint_base   # http://127.0.0.1:PORT/v2  (data plane: <endpoint_base>/<endpoint_id>/run)
    emu.stop()          # stops workers (SIGTERM, then SIGKILL) and the server, delivers pending webhooks
                        # (at most webhook_drain_s), then drops what is left, and removes the temp dir it made
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self

from goldgate.errors import StateError
from goldgate.local.runpod import responses
from goldgate.local.runpod.backend import JobRecord, RunPodBackend
from goldgate.local.runpod.config import EmulatorConfig
from goldgate.local.runpod.eventlog import EventLog, job_context
from goldgate.local.runpod.fleet import (
    Launcher,
    WorkerFleet,
    WorkerUrls,
    default_launcher,
    launcher_from_string,
)
from goldgate.local.runpod.server import RunPodApp, RunPodHTTPServer
from goldgate.local.runpod.webhooks import WebhookDispatcher
from goldgate.local.state import open_log, write_json_atomic
from goldgate.logs import masked

# The longest an idle emulator's ticker sleeps: what it waits for is known or notified, so this is only a backstop.
IDLE_TICK_MAX_S = 5.0
# The runpod SDK sends an exception the handler raised as this JSON text; a handler's {"error": ...} comes as is.
_SDK_ERROR_FIELDS = ("error_type", "error_message")
# The statuses whose job.finished line carries the job's error, and the error type a plain-text error gets.
_ERROR_TYPES = {"FAILED": "JobFailed", "TIMED_OUT": "JobTimedOut"}
# Endpoint env names whose values are masked in a job's logged error (a handler may echo its settings in one).
_SECRET_ENV = re.compile(r"SECRET|TOKEN|PASSWORD|KEY", re.IGNORECASE)


def job_error(error: Any, status: str = "FAILED") -> dict[str, str]:
    """A failed job's error as the log schema's {type, message}, whatever shape the worker (or the emulator) gave."""
    parsed = error
    if isinstance(error, str):
        try:
            parsed = json.loads(error)
        except ValueError:
            parsed = None
    if isinstance(parsed, dict) and all(isinstance(parsed.get(k), str) for k in _SDK_ERROR_FIELDS):
        return {"type": parsed["error_type"], "message": parsed["error_message"]}
    kind = _ERROR_TYPES.get(status, "JobFailed")
    if error is None:
        return {"type": kind, "message": f"the job ended {status} without an error"}
    return {"type": kind, "message": error if isinstance(error, str) else json.dumps(error, default=str)}


class RunPodEmulator:
    """One emulated RunPod account on 127.0.0.1. Startable in-process; `stop` is idempotent."""

    def __init__(self, config: EmulatorConfig, launcher: Launcher | None = None) -> None:
        self.config = config
        self.api_key = config.api_key or secrets.token_urlsafe(24)
        self.worker_token = secrets.token_urlsafe(24)
        if launcher is None:  # before any directory is made: a bad launcher setting leaves nothing behind
            launcher = launcher_from_string(config.launcher) if config.launcher else default_launcher(config.home)
        # Logs and workers' scratch space nobody configured go in a temp dir of this emulator's, gone at stop().
        own = None if config.logs_dir and config.workers_dir else Path(tempfile.mkdtemp(prefix="runpod-emu-"))
        self._own_dir = own
        self.logs_dir = Path(config.logs_dir) if config.logs_dir else own / "logs"  # type: ignore[operator]
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        workers_dir = Path(config.workers_dir) if config.workers_dir else own / "workers"  # type: ignore[operator]
        shutil.rmtree(workers_dir, ignore_errors=True)  # a killed run's workers left theirs: none of them lives on
        workers_dir.mkdir(parents=True)
        try:
            self._log_stream = open_log(self.logs_dir / "runpod-emulator.jsonl")
        except StateError:
            self._remove_own_dir()
            raise
        self.log = EventLog(self._log_stream, config.stack)
        self.backend = RunPodBackend(config, on_finished=self._finished, on_crash=self._crash, on_event=self._event)
        if config.state_file and Path(config.state_file).exists():
            try:
                self.backend.restore(json.loads(Path(config.state_file).read_text(encoding="utf-8")))
            except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                self._log_stream.close()
                self._remove_own_dir()
                raise StateError(f"emulator state file {config.state_file} cannot be loaded ({exc}); move it aside "
                                 "to start with no endpoints, or restore a good copy") from None
        self.webhooks = WebhookDispatcher(config, self.log)
        self._server = RunPodHTTPServer(config.host, config.port, RunPodApp(
            self.backend, self.api_key, self.worker_token, "", self.log))
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._server.app.data_base = self.endpoint_base
        self.fleet = WorkerFleet(self.backend, launcher, WorkerUrls(self.endpoint_base), self.worker_token,
                                 self.logs_dir, workers_dir, self.log)
        self._server.app.on_stops = self.fleet.apply  # type: ignore[method-assign]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stopped = False
        # The image each job's worker runs, kept past the worker: a job's later lines (finished after its worker
        # died, its webhooks, its expiry) name the image that ran it, not whatever the endpoint runs by then.
        self._job_images: dict[str, str] = {}

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v2"

    @property
    def endpoint_base(self) -> str:
        return f"{self.base_url}/v2"

    def start(self) -> Self:
        """Serve, once: `with RunPodEmulator(...).start() as emu` starts it here and again in __enter__. A second
        serving thread outlived stop(): socketserver's shutdown() ends one loop, the other went on polling the
        closed socket (a core at 100%), then took the connections of whatever socket got its fd number next."""
        if self._stopped:
            raise RuntimeError("this RunPod emulator was stopped; start a new one")
        if self._threads:
            return self
        # No polling: shutdown() wakes the loop (goldgate.local.serving), so an idle stack's server sleeps.
        serve = threading.Thread(target=self._server.serve_forever, name="runpod-emulator-http", daemon=True)
        tick = threading.Thread(target=self._tick, name="runpod-emulator-tick", daemon=True)
        self._threads = [serve, tick]
        for t in self._threads:
            t.start()
        self.log.info("runpod_emulator.started", base_url=self.base_url, logs_dir=str(self.logs_dir))
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        with self.backend.changed:  # an idle ticker waits on the backend's changes
            self.backend.changed.notify_all()
        for t in self._threads[1:]:
            t.join(timeout=5)
        with self.backend.lock:
            for w in self.backend.workers.values():
                w.stopping = True
            self.backend.changed.notify_all()
        self.fleet.stop_all(self.config.worker_stop_grace_s)
        self.fleet.lifeline.close()
        self._server.shutdown()
        self._server.server_close()
        # Jobs that finished in the workers' grace period (or just before) still get their webhooks.
        self.webhooks.drain(self.config.webhook_drain_s)
        self.webhooks.stop()
        self.log.info("runpod_emulator.stopped")
        self.log.close()
        self._remove_own_dir()

    def _remove_own_dir(self) -> None:
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tick(self) -> None:
        next_log_sweep = time.monotonic()  # the old logs of gone workers: at start, then each worker_log_sweep_s
        while not self._wait_for_tick(next_log_sweep):
            try:
                self.fleet.reap()
                self.backend.expire()
                self.fleet.apply(self.backend.plan())
                if time.monotonic() >= next_log_sweep:
                    next_log_sweep = time.monotonic() + self.config.worker_log_sweep_s
                    self.fleet.prune_logs()  # housekeeping, as `goldgate up` prunes them: no line of its own
            except Exception as exc:  # noqa: BLE001 -- the ticker must survive to keep workers supervised
                self.log.error("runpod_emulator.tick_failed", error=f"{type(exc).__name__}: {exc}")

    def _wait_for_tick(self, next_log_sweep: float) -> bool:
        """Wait for the next tick; True once the emulator stops. With work in hand (a worker, a job, an endpoint
        that keeps workers) a tick comes every `tick_s`. Without, the tick's next work is known (a finished job's
        result to expire, the log sweep) or comes with a change the backend notifies (a job, an endpoint): it
        sleeps until then, at most IDLE_TICK_MAX_S. An idle stack ticked 10 times a second, all day."""
        if self.fleet.pids():  # a process to reap, whatever the backend holds
            return self._stop.wait(self.config.tick_s)
        with self.backend.changed:  # checked and waited under the lock: a job submitted meanwhile is not missed
            if self._stop.is_set():
                return True
            until = self.backend.idle_until()
            if until is None:
                wait_s = self.config.tick_s
            else:
                wait_s = min(until - self.backend.clock(), next_log_sweep - time.monotonic(), IDLE_TICK_MAX_S)
                self.backend.changed.wait(max(self.config.tick_s, wait_s))
                return self._stop.is_set()
        return self._stop.wait(wait_s)

    def _finished(self, job: JobRecord) -> None:
        if job.webhook and job.status in self.config.webhook_statuses:
            self.webhooks.send(job.id, job.webhook, responses.webhook_payload(job), self._image_of(job))

    def _crash(self, worker_id: str, job_id: str) -> None:
        self.fleet.crash(worker_id, job_id)

    def _image_of(self, job: JobRecord) -> str | None:
        """The image of the worker that ran the job; a job no worker ran yet, the image its endpoint runs now."""
        if job.id in self._job_images:
            return self._job_images[job.id]
        endpoint = self.backend.endpoints.get(job.endpoint_id)
        return endpoint.latest.image if endpoint is not None and endpoint.releases else None

    def _secrets_of(self, job: JobRecord) -> tuple[str, ...]:
        """What a job's logged error must not show: the emulator's keys and the secret values of its endpoint's env."""
        endpoint = self.backend.endpoints.get(job.endpoint_id)
        env = [(k, v) for release in (endpoint.releases if endpoint else []) for k, v in release.env.items()]
        return (self.api_key, self.worker_token,
                *{v for k, v in env if _SECRET_ENV.search(k) and isinstance(v, str) and len(v) >= 6})

    def _event(self, event: str, **fields: Any) -> None:
        runpod_job_id = fields.pop("job", None)
        if runpod_job_id:
            job = self.backend.jobs.get(runpod_job_id)
            fields.update(runpod_job_id=runpod_job_id, **job_context(job.input if job else None))
            worker = self.backend.workers.get(str(fields.get("worker")))
            if event == "job.started" and worker is not None:
                self._job_images[runpod_job_id] = worker.image
            if job is not None:
                fields["worker_image_tag"] = self._image_of(job)
                if event == "job.finished" and job.status in _ERROR_TYPES:
                    fields["error"] = masked(job_error(job.error, job.status), self._secrets_of(job))
            if event in ("job.expired", "job.purged"):  # the job is dropped from the backend right after this line
                self._job_images.pop(runpod_job_id, None)
        elif event == "endpoint.deleted":  # its jobs went with it
            self._job_images = {jid: image for jid, image in self._job_images.items() if jid in self.backend.jobs}
        self.log.info(event, **fields)
        if event.startswith(("endpoint.", "registry.")) and self.config.state_file:
            self._save_state()

    def _save_state(self) -> None:
        # Owner-only: endpoint env is part of the state, and env carries the worker's secrets.
        write_json_atomic(Path(self.config.state_file), self.backend.snapshot(), private=True)  # type: ignore[arg-type]
