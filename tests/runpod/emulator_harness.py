"""Test harness for the RunPod client and emulator: stacks whose workers run tests/runpod/sdk_worker.py
under the real runpod SDK loop, a webhook receiver on loopback, and a patient wait."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from goldgate.local.runpod import RunPodEmulator
from goldgate.runpod import ControlPlaneClient, DataPlaneClient, Endpoint, EndpointConfig, RetryPolicy

SDK_WORKER = Path(__file__).with_name("sdk_worker.py")
API_KEY = "rp_test_key_0123456789abcdef"
POLL_S = 0.05  # how often the stand-in servers' loops look for shutdown()


def sdk_launcher(image_ref: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """Every image runs the test handler; WORKER_IMAGE tells the output which image a worker started with."""
    return [sys.executable, str(SDK_WORKER)], {**env, "WORKER_IMAGE": image_ref}


def wait_for(predicate: Callable[[], Any], what: str, timeout_s: float = 60.0, every_s: float = 0.1) -> Any:
    """Poll until predicate() is truthy (a wait, not an assertion on speed: the bound is generous)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(every_s)


@dataclass
class Stack:
    """One running emulator with clients for it."""

    emulator: RunPodEmulator
    control: ControlPlaneClient
    no_retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=1))

    def endpoint(self, **kw: Any) -> Endpoint:
        cfg = {"name": "goldgate-test", "image": "local/worker@sha256:" + "a" * 64, "gpu_pools": ("ADA_24",),
               "workers_max": 2, "idle_timeout_s": 2, **kw}
        return self.control.create_endpoint(EndpointConfig(**cfg))

    def jobs(self, endpoint_id: str, **kw: Any) -> DataPlaneClient:
        return DataPlaneClient(API_KEY, endpoint_id, self.emulator.endpoint_base, **kw)

    def finished(self, jobs: DataPlaneClient, job_id: str, timeout_s: float = 60.0) -> Any:
        def terminal() -> Any:
            st = jobs.status(job_id)
            return st if st.is_terminal else None
        return wait_for(terminal, f"job {job_id} to finish", timeout_s)


@dataclass
class Delivery:
    path: str
    query: dict[str, list[str]]
    body: dict[str, Any]
    at: float
    content_type: str | None = None


class WebhookReceiver:
    """Records every POST; answers 500 to the first `fail_first` attempts per job id."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.fail_first = 0
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                parts = urlsplit(self.path)
                with receiver._lock:
                    receiver.deliveries.append(Delivery(parts.path, parse_qs(parts.query), body, time.monotonic(),
                                                        self.headers.get("Content-Type")))
                    n = receiver._seen[body.get("id")] = receiver._seen.get(body.get("id"), 0) + 1
                    status = 500 if n <= receiver.fail_first else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/runpod/webhook"
        # shutdown() returns at the loop's next poll: the default half second would be every test's to wait out.
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": POLL_S},
                                        daemon=True)
        self._thread.start()

    def for_job(self, job_id: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.body.get("id") == job_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FlakyRunPod:
    """A stand-in RunPod that answers each path from a script of (status, body, headers); a callable
    body is called with the request's body text (e.g. to quote it back)."""

    def __init__(self, script: dict[str, list[tuple[int, Any, dict[str, str]]]]) -> None:
        self.calls: list[tuple[str, str]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.calls.append((self.command, self.path))
                steps = script[self.path]
                status, body, headers = steps.pop(0) if len(steps) > 1 else steps[0]
                if callable(body):
                    body = body(raw.decode())
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": POLL_S}, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/v2"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
