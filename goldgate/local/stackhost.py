"""One local stack's host process, on 127.0.0.1 only: the R2 stand-in (goldgate.local.object_store behind
goldgate.local.store_guard), the RunPod emulator with the stack's endpoint, the API service over the stack's
SQLite as a child process, and, with `database.retention`, the stack's Cron Trigger
(goldgate.local.retention_cron).

`goldgate up <stack>` starts `python -m goldgate.local.stackhost --stack S --home H` detached. It writes
`state.json` once everything answers. SIGHUP restarts the service and re-pins the endpoint's image (what
`pulumi up` does in the cloud). SIGUSR1 (`goldgate reload`) starts a new service on the stack's secret files and
its section's `api` settings, and touches nothing else: the endpoint, its workers and its jobs in flight go on as
they were. SIGTERM stops everything; one `goldgate down` did not send (a reboot, systemd, `kill`) also logs
`stack.stopped` naming the jobs left in flight, and leaves a "stopped" state.json that `goldgate status` explains.

The host owns the service's listening socket and hands it to each service it starts, so a redeploy refuses no
connection, as a Worker deploy refuses none: the new service serves beside the old one before the old one
stops, and a crashed service's connections wait in the backlog while it restarts, so a webhook sent meanwhile
is taken, not lost to retries that all land in a gap. (A request racing the old service's close of an idle
kept-alive connection can still be reset; RunPod's retry delivers it.) A new service that cannot start changes
nothing (`reload`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import logging
import os
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from http.server import HTTPServer
from pathlib import Path
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import ThreadedWSGIServer

from goldgate import spec as specs
from goldgate.errors import GoldgateError, describe
from goldgate.local import image_store
from goldgate.local.client_tokens import client_hashes
from goldgate.local.lifeline import Lifeline, exit_now
from goldgate.local.object_store import DurableBucket
from goldgate.local.retention_cron import (
    CronSchedule,
    RetentionCron,
    RetentionOutcome,
    RetentionRun,
    last_recorded_prune,
)
from goldgate.local.serving import WokenOnShutdown
from goldgate.local.state import (
    API_TOKEN_PREVIOUS,
    RELOAD_SIGNAL,
    WEBHOOK_SECRET_PREVIOUS,
    StackDir,
    code_record,
    open_log,
    secret_file_changes,
    spec_fingerprint,
    write_failure,
    write_json_atomic,
    write_private,
)
from goldgate.local.store_guard import StoreGuard
from goldgate.logs import JsonLogger, now_rfc3339
from goldgate.migrations import MIGRATIONS_DIR, apply_sqlite
from service.sockets import listening_socket

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO / "images" / "worker" / "workflows"
# The credentials the host's log lines must never carry (the S3 access key id is a name, not a secret).
LOGGED_SECRETS = ("api_token", "webhook_secret", "s3_secret_access_key", "runpod_api_key")
# ... and those the operator writes only at times (each previous one, while the webhook secret or the API token is
# rotated).
LOGGED_OPTIONAL_SECRETS = (WEBHOOK_SECRET_PREVIOUS, API_TOKEN_PREVIOUS)
# How often the host expires results while it runs. R2 runs lifecycle rules in the background, typically within a
# day of an object's expiry: hourly keeps a result's local life within an hour of its ttl.
RESULT_SWEEP_S = 3_600.0
# The main loop's sleep where the service's exit does not wake it (no pidfd: not Linux), and its backstop where it does.
LOOP_POLL_S = 0.2
LOOP_BACKSTOP_S = 5.0
# A stop by a signal goldgate did not send names at most this many of the jobs it left unsettled (`down` names 20 too).
MAX_LOGGED_JOBS = 20
# The stacks file's settings a `goldgate reload` applies: the API service's alone (its config, `service_config`), as
# `pulumi up` applies a Worker's vars with no job stopped. Every other setting (the endpoint's, storage's, the
# database's, `local`) shapes the RunPod endpoint, its workers or the host's own loops, which a reload never touches.
RELOADED_API_SETTINGS = ("max_body_bytes", "signed_url_ttl_s", "max_jobs_in_flight", "max_input_bytes",
                         "max_input_pixels", "rate_limits", "daily_spend_limit_usd", "client_daily_spend_limit_usd")


class _WokenWSGIServer(ThreadedWSGIServer, WokenOnShutdown, HTTPServer):
    """werkzeug's threaded server (what moto's ThreadedMotoServer makes) on goldgate.local.serving's loop: werkzeug
    polls for shutdown() every 0.5 s, which every host stop waited out after everything else had stopped."""


class ObjectStoreServer(ThreadedMotoServer):
    """moto's ThreadedMotoServer (its own `_server_entry`, as moto 5 writes it) serving on _WokenWSGIServer, behind
    goldgate.local.store_guard: no browser page, no other Host, no moto control call, and no credential but one of
    `access_key_ids` (None: any) reaches moto's app."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0, verbose: bool = False,
                 access_key_ids: Iterable[str] | None = None) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=verbose)
        self.guard = StoreGuard(DomainDispatcherApplication(create_backend_app), access_key_ids)

    def _server_entry(self) -> None:
        self._server = _WokenWSGIServer(self._ip_address, self._port, self.guard, MotoRequestHandler)
        self.guard.port = self._server.server_address[1]
        self._server_ready_event.set()
        self._server.serve_forever()


class LogStream:
    """The host's log, written line by line straight to its fd: a line that cannot be written (a full disk) is
    dropped, never raised. A log line the disk had no room for ended the host that was serving, in the middle of
    taking a deploy it could not apply (the error it logged was the disk being full)."""

    def __init__(self, file: Any) -> None:
        self.file = file  # opened for binary append (open_log): each line is one O_APPEND write
        self.dropped = 0
        self._cut = False  # the last line went in part (a disk filling up): the next starts on a line of its own

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        if self._cut:
            data = b"\n" + data
        try:
            written = os.write(self.file.fileno(), data)
        except OSError:
            self.dropped += 1
            self._cut = True  # nothing may have gone in, or a part: a bare newline first costs nothing
            return
        # A short write raises nothing: the line's rest was lost, and the next line would have been glued to it.
        self._cut = written < len(data)
        if self._cut:
            self.dropped += 1

    def flush(self) -> None:
        pass


def create_bucket(host: str, port: int, bucket: str, key_id: str) -> None:
    """Create `bucket` in the stack's object store: S3's CreateBucket, `PUT /<bucket>`. moto checks no signature (see
    README), so the request is sent as it is, naming the stack's access key id as the store's door
    (goldgate.local.store_guard) wants of every request: a boto3 client built for this one call cost each host start
    about 0.1 s of CPU (it loads and parses botocore's S3 service model)."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    credential = f"{key_id}/{time.strftime('%Y%m%d', time.gmtime())}/us-east-1/s3/aws4_request"
    try:
        conn.request("PUT", f"/{bucket}", headers={
            "Content-Length": "0",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=0"})
        answer = conn.getresponse()
        body = answer.read(2000)
    finally:
        conn.close()
    if answer.status != 200:
        raise RuntimeError(f"the object store refused to create the results bucket {bucket}: HTTP {answer.status} "
                           f"{' '.join(body.decode('utf-8', 'replace').split())}")


class ServiceExited(RuntimeError):
    """A service process ended before it served: it refused its config (a slow start is not this)."""


class StackHost:
    """Owns the stack's processes for as long as it runs."""

    def __init__(self, stack: str, home: Path, stacks_file: Path, result_sweep_s: float = RESULT_SWEEP_S) -> None:
        self.dir = StackDir(home, stack)
        self.dir.ensure()
        self.home = home
        # When this host started (state.json's `started_at`), before its RunPod and service: a job created before it
        # was sent to an earlier host's RunPod, which ended with that host, so no webhook will come for it (`goldgate
        # stuck` lists it at once, not among the younger jobs that may simply be running).
        self.started_at = now_rfc3339()
        self.stacks_file = stacks_file
        self.spec = specs.load_local(stack, stacks_file)
        # An error's text may quote a config or a URL that carries a credential: the stack's are masked in every line.
        secrets = [self.dir.secret(name) for name in LOGGED_SECRETS]
        secrets += [value for name in LOGGED_OPTIONAL_SECRETS if (value := self.dir.optional_secret(name))]
        log = open_log(self.dir.logs_dir / "stackhost.jsonl", f"goldgate up {stack}", binary=True)
        self.log = JsonLogger("orchestrator", LogStream(log), secrets=secrets, stack=stack,  # type: ignore[arg-type]
                              workflow_version=self.spec.workflow_version)
        # The service's listening socket, kept by the host for the stack's life (the service's own binder).
        self.listener = listening_socket("127.0.0.1", 0)
        self.service_port = self.listener.getsockname()[1]
        self.service: subprocess.Popen | None = None
        self.lifeline = Lifeline()  # the service ends with this process, however this process ends
        self.generation = 0
        self.image: str | None = None  # the image the service serves (state.json's `image`)
        self.code: dict[str, str] = {}  # the checkout's code this host runs (state.json's `code`), once it serves
        self.secrets_stamp: dict[str, Any] | None = None  # the rotated secret files the service read (state.json)
        self.config_path = self.dir.root / "service.json"
        self.spawned_config = ""  # the config the newest service started was given
        self.serving_config = ""  # ... and the one the service in `self.service` was given
        self.stopping = threading.Event()
        self.wake = threading.Event()  # the main loop's: a signal, the service's exit (watch_exit)
        self.exits_watched = True
        self.reload_requested = threading.Event()
        self.secrets_requested = threading.Event()  # `goldgate reload`: RELOAD_SIGNAL
        # The last `goldgate reload`'s outcome, in every state.json (`reload`): `count` tells its caller the host
        # answered it, and the key's presence that this host takes the signal at all.
        self.last_reload: dict[str, Any] = {"signal": RELOAD_SIGNAL.name, "count": 0}
        self.result_sweep_s = result_sweep_s
        self.result_sweeper: threading.Thread | None = None
        # The retention cron's own stop: set first thing in `shutdown`, so a prune in hand ends before RunPod's
        # grace period and the service's stop, not after them.
        self.retention_stopping = threading.Event()
        self.retention_run: RetentionRun | None = None
        self.retention_thread: threading.Thread | None = None
        # The state.json the host could not write (a full disk) while it serves: written again each few seconds
        # until it can be; state.json meanwhile still says what the host last recorded (the image it serves).
        self.unwritten_state: dict[str, Any] | None = None
        self.unwritten_since = 0.0
        # Whether state.json on disk is this host's last word: a "ready" one is removed when the host stops, but
        # not when its "failed" one could not be written over it (status then says the host ended, not "down").
        self.state_recorded = True
        # The signal that stopped the host (SIGTERM, SIGINT), and who of goldgate asked for it when one did ("down",
        # "up": StackDir.stop_asked_by, read as the loop ends, while the asker still holds the up lock and waits).
        # A stop nobody of goldgate asked for (a reboot, systemd, `kill`) leaves its jobs in flight without their
        # RunPod, and says so: a warning, and a state.json that `goldgate status` explains (`unasked_stop`).
        self.stop_signal: str | None = None
        self.stop_asked_by: str | None = None
        self.ready = False  # it served: a start that failed says so in its own state ("failed") and line

    # -- object store -------------------------------------------------------------------------
    def start_object_store(self) -> None:
        # moto's server logs every request through werkzeug in plain text; the stack's logs stay v1.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.s3 = ObjectStoreServer(ip_address="127.0.0.1", port=0, verbose=False,
                                    access_key_ids=[self.dir.secret("s3_access_key_id")])
        self.s3.start()
        host, port = self.s3.get_host_and_port()
        self.s3_url = f"http://{host}:{port}"
        create_bucket(host, port, self.spec.storage.bucket, self.dir.secret("s3_access_key_id"))
        # moto keeps objects in memory; the stack's D1 is a file: results must outlive the host as jobs do.
        bucket = self.spec.storage.bucket
        self.results = DurableBucket(self.dir.objects_dir / bucket, bucket, self.log,
                                     result_ttl_days=self.spec.storage.result_ttl_days)
        self.results.attach()  # what expired while the stack was down is not put back
        self.result_sweeper = threading.Thread(target=self.expire_results, name="result-expiry", daemon=True)
        self.result_sweeper.start()

    def s3_key_id(self) -> str:
        """The stack's S3 access key id as its file says now, for a client the host starts: the store takes it."""
        key_id = self.dir.secret("s3_access_key_id")
        store = getattr(self, "s3", None)   # None before the store started (a host's config made alone)
        if store is not None:
            store.guard.allow_key(key_id)
        return key_id

    def expire_results(self) -> None:
        """The bucket's lifecycle rule while the stack runs: a result that reaches its ttl goes, as in R2."""
        while not self.stopping.wait(self.result_sweep_s):
            self.results.expire()

    # -- database retention (the Cron Trigger's stand-in) ---------------------------------------
    def start_retention(self) -> None:
        kept = self.spec.database.retention
        if kept is None:
            return
        self.retention_run = RetentionRun(self.spec, self.home, self.retention_stopping)
        cron = RetentionCron(CronSchedule.parse(kept.cron), self.retention_run, self.retention_logged,
                             self.retention_stopping, last_run=lambda: last_recorded_prune(self.home, self.spec.name))
        self.retention_thread = threading.Thread(target=cron.loop, name="retention-cron", daemon=True)
        self.retention_thread.start()

    def retention_logged(self, outcome: RetentionOutcome) -> None:
        """One line per run, under the events the cloud's scheduled handler logs."""
        if outcome.kind == "pruned":
            self.log.info("retention.pruned", status=outcome.status, message=outcome.message, data=outcome.data)
        elif outcome.kind == "skipped":
            self.log.info("retention.skipped", reason=outcome.reason, message=outcome.message, data=outcome.data)
        else:
            exc = outcome.error
            self.log.error("retention.failed", reason=outcome.reason, message=outcome.message, data=outcome.data,
                           error={"type": type(exc).__name__, "message": str(exc)} if exc is not None else None)

    def stop_retention(self, timeout_s: float = 15.0) -> None:
        """End a prune in hand now: the statement in hand rolls back, the ones before it stay (each stands alone)."""
        self.retention_stopping.set()
        if self.retention_run is not None:
            self.retention_run.interrupt()
        if self.retention_thread is not None:
            self.retention_thread.join(timeout_s)

    # -- RunPod emulator ----------------------------------------------------------------------
    def worker_env(self, image: str | None) -> dict[str, str]:
        local = self.spec.local
        return {
            **self.spec.endpoint.worker_timeouts(),
            **self.spec.endpoint.env,
            "STACK": self.spec.name,
            "WORKFLOW_VERSION": self.spec.workflow_version,
            "WORKER_IMAGE_TAG": image or "",
            "R2_ENDPOINT_URL": self.s3_url,
            "R2_BUCKET": self.spec.storage.bucket,
            "R2_ACCESS_KEY_ID": self.s3_key_id(),
            "R2_SECRET_ACCESS_KEY": self.dir.secret("s3_secret_access_key"),
            "GPU_TYPE": self.spec.endpoint.cost_gpu_type,
            "COMFY_EMULATOR_STARTUP_S": str(local.comfy_startup_s if local else 0.5),
        }

    def start_runpod(self) -> None:
        from goldgate.local import runpod_embed as embed

        image = self.dir.pinned_image()
        # The workers' scratch space lives in the stack's dir: a `goldgate up` after a killed host clears it.
        self.runpod = embed.start(spec=self.spec, home=self.home, api_key=self.dir.secret("runpod_api_key"),
                                  logs_dir=self.dir.logs_dir, workers_dir=self.dir.workers_dir)
        self.endpoint_id = embed.create_endpoint(self.runpod, self.spec, image, self.worker_env(image))

    # -- service --------------------------------------------------------------------------------
    def service_config(self, image: str | None) -> dict[str, Any]:
        sp = self.spec
        workflows = WORKFLOWS_DIR
        if image and image_store.is_local_ref(image):
            workflows = image_store.resolve(image, self.home) / "worker" / "workflows"
        # Checked as the service checks them: a pair it refuses is a StateError naming the file, which
        # restart_service survives and `up` reports, not a service that exits.
        api_token, webhook_secret = self.dir.current_secrets()
        config = {
            "stack": sp.name,
            "api_token": api_token,
            "webhook_secret": webhook_secret,
            "runpod_api_key": self.dir.secret("runpod_api_key"),
            "runpod_endpoint_base": f"{self.runpod.endpoint_base}/{self.endpoint_id}",
            "public_base_url": f"http://127.0.0.1:{self.service_port}",
            "workflows_dir": str(workflows),
            "execution_timeout_ms": sp.endpoint.execution_timeout_ms,
            "ttl_ms": sp.endpoint.ttl_ms,
            "max_body_bytes": sp.api.max_body_bytes,
            "signed_url_ttl_s": sp.api.signed_url_ttl_s,
            "max_jobs_in_flight": sp.api.max_jobs_in_flight,
            "max_input_bytes": sp.api.max_input_bytes,
            "max_input_pixels": sp.api.max_input_pixels,
            # counted in process, per window of a minute, as the Worker's rate limit bindings count per location
            "create_rate_limit_per_minute": sp.api.rate_limits.create_per_minute,
            "inputs_rate_limit_per_minute": sp.api.rate_limits.inputs_per_minute,
            # None (no limit) is left out of the service config as any unset key
            "daily_spend_limit_usd": sp.api.daily_spend_limit_usd,
            "client_daily_spend_limit_usd": sp.api.client_daily_spend_limit_usd,
            "result_ttl_days": sp.storage.result_ttl_days,
            "gpu_type": sp.endpoint.cost_gpu_type,
            "gpu_count": sp.endpoint.gpu_count,
            "price_per_gpu_second": sp.price_per_gpu_second(),
            "workflow_version": sp.workflow_version,
            "worker_image_tag": image,
            "host": "127.0.0.1",
            "port": self.service_port,
            "db_path": str(self.dir.db_path),
            "s3_endpoint_url": self.s3_url,
            "s3_bucket": sp.storage.bucket,
            "s3_access_key_id": self.s3_key_id(),
            "s3_secret_access_key": self.dir.secret("s3_secret_access_key"),
            # Read again for each service the host starts (`up`, and each deploy's new one): a rotation applies
            # with no stop. Left out when there is none: the service refuses an empty one.
            **({"webhook_secret_previous": previous} if (previous := self.dir.webhook_secret_previous()) else {}),
            **({"api_token_previous": token} if (token := self.dir.api_token_previous()) else {}),
            # the named clients' hashes, never their tokens (secrets/clients/, goldgate/local/client_tokens.py)
            **({"client_tokens": hashes} if (hashes := client_hashes(self.dir)) else {}),
        }
        # A secret this service reads for the first time (a rotation's previous one, written after the host
        # started) is masked in the host's own lines from now on too, as the service masks it in its own.
        self.log.secrets = tuple(dict.fromkeys((*self.log.secrets, *(
            config[name] for name in (*LOGGED_SECRETS, *LOGGED_OPTIONAL_SECRETS) if config.get(name)))))
        return config

    def start_service(self, image: str | None) -> None:
        self.service = self.spawn_service(image)
        self.serving_config = self.spawned_config

    def restart_service(self) -> None:
        """Start the service again after it died. Its config is made again, as for any start (a rotation that is
        complete applies); one the stack's files cannot make now (a rotation half done: the previous secret equal
        to the current one, a current one too short; a secret file refused), or a new one the service still
        refuses, restarts it on the config the dead one ran with, and the error names the file (or the service's
        log): the stack serves on, with the jobs in flight, as `reload` keeps the old service."""
        stamp = self.dir.rotated_secrets_stamp()
        try:
            config = json.dumps(self.service_config(self.image), indent=2)
        except GoldgateError as exc:
            self.config_refused(exc)
            # service.json may hold a failed deploy's config since: the one the dead service read is written back.
            # The stamp stays the dead one's: `up` still says the rotated files are not applied.
            config, stamp = self.serving_config, self.secrets_stamp
        try:
            self.service = self.spawn_from_config(config)
        except ServiceExited as exc:  # a new config the service refuses, whatever goldgate checked before
            if config == self.serving_config:
                raise  # the dead one's own config no longer starts: nothing is left to fall back on
            self.config_refused(exc)
            config, stamp = self.serving_config, self.secrets_stamp
            self.service = self.spawn_from_config(config)
        self.serving_config, self.secrets_stamp = config, stamp

    def config_refused(self, exc: Exception) -> None:
        """Said when the service is restarted on the config the dead one ran with, not the stack's files' own."""
        message = describe(exc)
        self.log.error("service.config_refused", message=message,
                       error={"type": type(exc).__name__, "message": str(exc)},
                       data={"config": str(self.config_path)})

    def spawn_service(self, image: str | None, timeout_s: float = 60.0) -> subprocess.Popen:
        """A service process serving on the host's socket, returned once it serves (beside any other)."""
        stamp = self.dir.rotated_secrets_stamp()  # before the read: a file written meanwhile reads as changed
        config = json.dumps(self.service_config(image), indent=2)
        proc = self.spawn_from_config(config, timeout_s)
        self.spawned_config, self.secrets_stamp = config, stamp
        return proc

    def spawn_from_config(self, config: str, timeout_s: float = 60.0) -> subprocess.Popen:
        """A service process started on `config` (service.json's text), returned once it serves."""
        config_path = self.config_path
        write_private(config_path, config)
        ready = self.dir.root / "service.ready"  # the new process writes its port here once it serves
        ready.unlink(missing_ok=True)
        fd = self.listener.fileno()
        # The service files the new process reads as it starts: a deploy's or a restart's service runs the checkout's
        # code as it is then, not the host's (the host's own record stays what it read at its start).
        service_code = code_record() if self.code else {}
        out = open_log(self.dir.logs_dir / "service.jsonl", f"goldgate up {self.spec.name}")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "goldgate.local.lifeline", "service.local_server", "--config", str(config_path),
                 "--listen-fd", str(fd), "--port-file", str(ready)],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **self.lifeline.child_env()}, pass_fds=(*self.lifeline.pass_fds, fd))
        finally:
            out.close()  # the child has its own copy
        self.watch_exit(proc)
        deadline = time.monotonic() + timeout_s
        while not ready.exists():
            if proc.poll() is not None:
                raise ServiceExited(f"the service exited with code {proc.returncode} before it served; "
                                   f"see {self.dir.logs_dir / 'service.jsonl'}")
            if time.monotonic() > deadline:
                self.stop_service(proc)
                raise RuntimeError(f"the service did not serve within {timeout_s:g} s (stopped it); "
                                   f"see {self.dir.logs_dir / 'service.jsonl'}")
            time.sleep(0.05)
        self.code.update(service_code)
        return proc

    def stop_service(self, proc: subprocess.Popen | None = None) -> None:
        """Stop `proc` (the service by default): SIGTERM lets it finish the requests it has in hand."""
        proc = proc or self.service
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # -- lifecycle ------------------------------------------------------------------------------
    def write_state(self, image: str | None, **extra: Any) -> None:
        self.image = image
        write_json_atomic(self.dir.state_file, {
            "status": "ready",
            "pid": os.getpid(),
            "generation": self.generation,
            "api_url": f"http://127.0.0.1:{self.service_port}",
            "runpod_api_base": self.runpod.api_base,
            "runpod_endpoint_base": self.runpod.endpoint_base,
            "endpoint_id": self.endpoint_id,
            "s3_endpoint_url": self.s3_url,
            "image": image,
            "service_pid": self.service.pid if self.service else None,
            "spec_fingerprint": spec_fingerprint(self.spec),  # `up` compares it with the stacks file's section
            "secrets_stamp": self.secrets_stamp,  # and this with the secret files a rotation edits
            "code": self.code,  # and `status` and `up` this with the checkout's code, after an upgrade
            "started_at": self.started_at,
            "reload": self.last_reload,
            **extra,
        })

    def reload(self) -> None:
        """Apply a new pin: start the service that names it beside the old one, PATCH the endpoint's image and
        env, then stop the old service. A new service that cannot start changes nothing: the old one serves on,
        the endpoint keeps its image, the pin goes back, and `state.json` says why (`redeploy_failed`). (A first
        deploy creates the endpoint before the service, which names it: there was no image to keep.)"""
        from goldgate.local import runpod_embed as embed

        image, serving = self.dir.pinned_image(), self.image
        began_at = now_rfc3339()  # the new image's workers may start, and die, before `stack.redeployed` says it
        if self.endpoint_id == embed.NOT_DEPLOYED:  # the first deploy creates the endpoint the service will name
            self.endpoint_id = embed.update_endpoint(self.runpod, self.spec, self.endpoint_id, image,
                                                     self.worker_env(image))
        try:
            new = self.spawn_service(image)  # serves beside the old one, on the same socket
        except Exception as exc:  # noqa: BLE001 -- any reason the new service cannot serve keeps the old one
            self.redeploy_failed(image, serving, exc)
            return
        try:
            self.endpoint_id = embed.update_endpoint(self.runpod, self.spec, self.endpoint_id, image,
                                                     self.worker_env(image))
        except BaseException:
            self.stop_service(new)  # the host reports the failure and stops; the old service is its to stop
            raise
        old, self.service, self.serving_config = self.service, new, self.spawned_config
        self.stop_service(old)
        self.generation += 1
        self.keep_state(image)
        self.log.info("stack.redeployed", worker_image_tag=image,
                      data={"generation": self.generation, "began_at": began_at})

    def reload_secrets(self) -> None:
        """`goldgate reload`: a new service on the stack's secret files as they are now, and the stacks file's `api`
        settings (RELOADED_API_SETTINGS), with the same image and endpoint, beside the old one on the same socket;
        then the old one stops once the requests in its hands are answered. Nothing else moves: no pin, no PATCH
        of the endpoint, no worker, no job. A new service that cannot start (a file refused, as a restart refuses
        it) changes nothing: the old one serves on, on its settings, service.json is put back to its config, and
        `state.json`'s `reload` says why for the command that waits."""
        began_at, before, spec = now_rfc3339(), self.secrets_stamp, self.spec
        # `began_monotonic` (the system's monotonic clock, which every process on the machine reads alike): a
        # `goldgate reload` whose signal came while another reload was in hand (a SIGUSR1 sent by hand) waits for one
        # that began after its signal, not for this one, which read the files before its edit (reload_answered).
        record: dict[str, Any] = {"signal": RELOAD_SIGNAL.name, "count": self.last_reload["count"] + 1,
                                  "began_at": began_at, "began_monotonic": time.monotonic()}
        self.spec, settings, unread = self.api_settings_now()
        try:
            new = self.spawn_service(self.image)
        except Exception as exc:  # noqa: BLE001 -- any reason the new service cannot serve keeps the old one
            self.spec = spec
            with contextlib.suppress(OSError):  # what the running service read, as `up` and `status` read it
                write_private(self.config_path, self.serving_config)
            error = write_failure(exc) if isinstance(exc, OSError) else describe(exc)
            self.last_reload = {**record, "outcome": "refused", "error": error}
            self.keep_state(self.image)
            self.log.error("stack.reload_refused", worker_image_tag=self.image, message=error,
                           error={"type": type(exc).__name__, "message": str(exc)},
                           data={"config": str(self.config_path)})
            return
        old, self.service, self.serving_config = self.service, new, self.spawned_config
        if old is not None and old.poll() is not None:
            # It died as the reload was asked, and the new one replaced it before the loop saw it: its death is
            # said as the loop says it (the loop's own check now finds the new one serving, and says nothing).
            self.log.error("service.exited", data={"code": old.returncode})
        self.stop_service(old)
        changed = secret_file_changes(before, self.secrets_stamp)
        self.last_reload = {**record, "outcome": "applied", "changed": changed, "settings": settings,
                            "settings_unread": unread}
        self.keep_state(self.image)
        self.log.info("stack.reloaded", worker_image_tag=self.image,
                      data={"changed": changed, "settings": settings, "began_at": began_at})

    def api_settings_now(self) -> tuple[specs.StackSpec, list[str], str | None]:
        """The host's spec with the stacks file's `api` section as it reads now (what a reload applies), the
        settings of RELOADED_API_SETTINGS that differ (`api.<name>`), and why the file could not be read (the
        spec then stays as it is: a stacks file broken in an edit must not stop a revocation from applying)."""
        try:
            now = specs.load_local(self.spec.name, self.stacks_file)
        except (GoldgateError, OSError) as exc:
            return self.spec, [], describe(exc)
        changed = [f"api.{name}" for name in RELOADED_API_SETTINGS
                   if getattr(now.api, name) != getattr(self.spec.api, name)]
        # The whole section is taken, its cloud-only keys too (no local process reads them): state.json's
        # spec_fingerprint then says "changed" only for what a reload did not apply.
        return dataclasses.replace(self.spec, api=now.api), changed, None

    def redeploy_failed(self, image: str | None, serving: str | None, exc: Exception) -> None:
        """The new service could not serve: the old one serves on. The pin goes back and `state.json` says why, each
        as far as the disk allows: the likeliest reason is a disk that is full, where neither may be writable, and
        that must not stop the stack that serves (the host went down, and `status` said only "down"). A state the
        disk has no room for is written once it has (`keep_state`); meanwhile state.json names the image served."""
        error = write_failure(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
        failed: dict[str, Any] = {"image": image, "error": error}
        if serving is not None:
            try:
                self.dir.pin(serving, reason=f"deploy of {image} failed")
            except OSError as pin_exc:  # `status` names the pin its host does not serve, and what to run
                failed["pin_not_reverted"] = write_failure(pin_exc)
        self.generation += 1
        self.keep_state(serving, redeploy_failed=failed)
        self.log.error("stack.redeploy_failed", worker_image_tag=serving, message=error,
                       error={"type": type(exc).__name__, "message": str(exc)},
                       data={"generation": self.generation, "image": image, **failed})

    def keep_state(self, image: str | None, **extra: Any) -> None:
        """`write_state` for a host that serves: one the disk has no room for is kept and written again later
        (`write_unwritten_state`), and the host serves on."""
        self.image = image
        try:
            self.write_state(image, **extra)
        except OSError:  # no line of its own: a disk that has no room for the state has none for the log either
            self.unwritten_state, self.unwritten_since = {"image": image, **extra}, time.monotonic()
        else:
            self.unwritten_state = None

    def write_unwritten_state(self, every_s: float = 2.0) -> None:
        if self.unwritten_state is not None and time.monotonic() - self.unwritten_since >= every_s:
            state = dict(self.unwritten_state)
            self.keep_state(state.pop("image"), **state)

    def wake_for(self, event: threading.Event) -> None:
        event.set()
        self.wake.set()

    def loop_wait_s(self) -> float:
        """How long the main loop sleeps unless woken: a signal wakes it, and so does the service's exit where the
        platform tells it (watch_exit); a state.json still to write is tried again every 2 s."""
        if self.unwritten_state is not None:
            return 2.0
        return LOOP_BACKSTOP_S if self.exits_watched else LOOP_POLL_S

    def watch_exit(self, proc: subprocess.Popen) -> None:
        """Wake the main loop when `proc` ends, without reaping it (Linux's pidfd; elsewhere the loop polls). The
        loop polled the service 5 times a second for the stack's whole life, to restart one that crashed."""
        try:
            fd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # not Linux 5.3+: the loop polls (LOOP_POLL_S)
            self.exits_watched = False
            return

        def wait() -> None:
            try:
                poller = select.poll()
                poller.register(fd, select.POLLIN)
                poller.poll()  # readable once the process has ended
            finally:
                os.close(fd)
                self.wake.set()

        threading.Thread(target=wait, name=f"service-exit-{proc.pid}", daemon=True).start()

    def stop_on_signal(self, name: str) -> None:
        self.stop_signal = name
        self.wake_for(self.stopping)

    def migrate(self) -> None:
        """Apply the migrations to the stack's database. One SQLite cannot read (its file damaged, or no database)
        names the way out, a verified backup restored over it: SQLite's words alone left the operator with none."""
        try:
            apply_sqlite(self.dir.db_path, MIGRATIONS_DIR)
        except sqlite3.DatabaseError as exc:
            code = getattr(exc, "sqlite_errorname", None) or ""  # None on an error raised by Python itself
            if not (code.startswith("SQLITE_CORRUPT") or code == "SQLITE_NOTADB"):
                raise  # locked, read-only, a bad migration: its own words say it
            stack = self.spec.name
            raise GoldgateError(
                f"{type(exc).__name__}: {exc}: {stack}'s database {self.dir.db_path} is damaged (SQLite cannot read "
                f"it); restore a verified backup over it: `goldgate dr-restore {stack} --list` lists the backups "
                f"(pick the newest taken before the damage), `goldgate dr-restore {stack} --backup <file>` restores "
                f"it (the damaged file is kept aside), then `goldgate up {stack}`; docs/D1_DISASTER_RECOVERY.md, "
                '"Local"') from None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_on_signal("SIGTERM"))
        signal.signal(signal.SIGINT, lambda *_: self.stop_on_signal("SIGINT"))
        signal.signal(signal.SIGHUP, lambda *_: self.wake_for(self.reload_requested))
        signal.signal(RELOAD_SIGNAL, lambda *_: self.wake_for(self.secrets_requested))
        try:
            self.migrate()
            self.dir.record_database()  # a missing file is a lost database from now on, never a first start
            self.start_object_store()
            self.start_runpod()
            image = self.dir.pinned_image()
            self.start_service(image)
            # What it runs, as its files read now that it has imported them: an upgrade of the checkout under it
            # changes the files, not the code it runs until it restarts.
            self.code = code_record(list(sys.modules.values()))
            self.write_state(image)
            # `began_at`: when it began to take the image (its start): its first workers may start, and die, before
            # this line (a PROD keeps one up from the endpoint's creation), and `goldgate status` shows theirs as now's.
            self.log.info("stack.ready", worker_image_tag=image, data={"began_at": self.started_at})
            self.ready = True
            self.start_retention()
            while True:
                self.wake.clear()  # before the checks: what comes after them wakes the wait below
                if self.stopping.is_set():
                    self.stop_asked_by = self.dir.stop_asked_by()  # the asker waits for this host to end
                    break
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self.reload()
                if self.secrets_requested.is_set():
                    self.secrets_requested.clear()
                    self.reload_secrets()
                if self.service and self.service.poll() is not None:
                    self.log.error("service.exited", data={"code": self.service.returncode})
                    self.restart_service()
                    self.keep_state(self.image)  # names the new service's pid
                self.write_unwritten_state()
                self.wake.wait(self.loop_wait_s())
            return 0
        except Exception as exc:  # noqa: BLE001 -- the host reports why it could not start, then cleans up
            # A GoldgateError's message is the whole story; anything else is named by its type.
            error = write_failure(exc) if isinstance(exc, OSError) else describe(exc)
            try:
                write_json_atomic(self.dir.state_file, {"status": "failed", "pid": os.getpid(), "error": error})
            except OSError:  # a full disk: its "ready" state stays, and `status` says the host ended without `down`
                self.state_recorded = False
                with contextlib.suppress(OSError, ValueError):
                    print(f"stackhost: error: {error}", file=sys.stderr, flush=True)
            self.log.error("stack.failed", error={"type": type(exc).__name__, "message": str(exc)})
            return 1
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        self.stop_retention()
        # RunPod first: a job that finishes in its worker's grace period sends its webhook to a service that
        # is still there to take it (stopped first, the job stayed queued in D1 with its result in R2).
        runpod = getattr(self, "runpod", None)
        if runpod is not None:
            runpod.stop()
        self.stop_service()
        self.listener.close()
        self.stopping.set()  # ends the sweeper of a host that failed to start too (nothing set it then)
        if self.result_sweeper is not None:
            self.result_sweeper.join(30)  # a sweep in hand finishes: no expired object left half removed
        s3 = getattr(self, "s3", None)
        if s3 is not None:
            s3.stop()
        self.lifeline.close()
        unasked = self.unasked_stop()
        state = self.dir.state_file
        if state.exists() and self.state_recorded:
            try:
                current = json.loads(state.read_text(encoding="utf-8"))
            except ValueError:
                current = {}
            if current.get("status") != "failed":
                self.record_stop(current, unasked)
        if unasked is None:
            self.log.info("stack.stopped")
            return
        ids, count = unasked["job_ids"], unasked["unsettled"] + unasked["no_runpod_id"]
        stack = self.spec.name
        jobs = (f"{count} job(s) still queued or in progress get no webhook: the local RunPod's queue ended with the "
                f"host (first: {' '.join(ids[:5]) or 'none with a RunPod id'}); `goldgate up {stack}` names them, and "
                f"`goldgate stuck {stack}` lists each with its recover line" if count else "no job was in flight")
        self.log.warning("stack.stopped", message=f"stopped by {unasked['signal']}, not by `goldgate down {stack}` "
                                                  f"(a reboot, systemd, `kill`?): {jobs}", data=unasked)

    def unasked_stop(self) -> dict[str, Any] | None:
        """What a stop by a signal goldgate did not send leaves behind (None for any other stop): the jobs still queued
        or in progress once RunPod and the service have stopped (a job that ended in its worker's grace period was
        settled by its webhook), which no webhook will settle now. `down` says the same of the stops it makes."""
        if not self.ready or self.stop_signal is None or self.stop_asked_by is not None:
            return None
        unsettled = self.dir.unsettled_jobs()
        ids, unsent = unsettled if unsettled is not None else ([], 0)
        return {"signal": self.stop_signal, "stopped_at": now_rfc3339(), "unsettled": len(ids),
                "job_ids": ids[:MAX_LOGGED_JOBS], "no_runpod_id": unsent, "jobs_read": unsettled is not None}

    def record_stop(self, current: dict[str, Any], unasked: dict[str, Any] | None) -> None:
        """The state file as the host leaves it: removed after a stop goldgate asked for (`down`); after one by a
        signal from elsewhere, a "stopped" record, which `goldgate status` explains (LocalPlatform._ended) until the
        next `up` or `down` removes it. A disk that has no room for it keeps the "ready" one: status then says the
        host ended without `down`, which is true as well."""
        if unasked is None:
            self.dir.state_file.unlink(missing_ok=True)
            return
        record = {"status": "stopped", "pid": os.getpid(), "started_at": self.started_at,
                  "image": current.get("image", self.image), **unasked}
        with contextlib.suppress(OSError):
            write_json_atomic(self.dir.state_file, record)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m goldgate.local.stackhost")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--stacks-file", type=Path, default=specs.LOCAL_STACKS_FILE)
    parser.add_argument("--result-sweep-s", type=_positive_seconds, default=RESULT_SWEEP_S,
                        help=f"seconds between sweeps for expired results (default {RESULT_SWEEP_S:g})")
    args = parser.parse_args(argv)
    # One host per stack: a second would share the database and overwrite the first one's state.json.
    if StackDir(args.home, args.stack).take_host_lock() is None:
        holder = StackDir(args.home, args.stack).lock_file.read_text(encoding="utf-8").strip() or "?"
        print(f"stackhost: error: stack {args.stack} already has a host process (pid {holder}); "
              f"`goldgate down {args.stack}` stops it", file=sys.stderr)
        return 2
    try:
        host = StackHost(args.stack, args.home, args.stacks_file, result_sweep_s=args.result_sweep_s)
    except GoldgateError as exc:  # said where `goldgate up` looks, in one line: it started nothing yet
        write_json_atomic(StackDir(args.home, args.stack).state_file, {"status": "failed", "pid": os.getpid(),
                                                                       "error": str(exc)})
        print(f"stackhost: error: {exc}", file=sys.stderr)
        return 2
    return host.run()


if __name__ == "__main__":
    # everything it ran is stopped by now: no interpreter teardown to pay (lifeline.exit_now)
    exit_now(main())
