"""Shared pieces of the release tests: the CI policy for missing components, PNG renders, and a small
stand-in of the job API's client-facing routes (queue/create, status, result) for unit tests of the
golden runner that must not need a whole local platform."""

from __future__ import annotations

import hashlib
import io
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from goldgate.cli import main

TOKEN = "test-token-not-a-secret"


def write_case(d: Path, name: str, text: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.yaml").write_text(text)


def golden_suite(root: Path) -> Path:
    """Two golden cases (one of them smoke) and their references under `root`, as the stand-in renders them."""
    cases = root / "cases"
    write_case(cases, "square", "workflow: wf-a\nsmoke: true\ninputs: {prompt: p1, seed: 1, width: 64, height: 64}\n"
                                "expect: {images: 1, width: 64, height: 64, max_hash_distance: 4}\n")
    write_case(cases, "batch", "workflow: wf-b\ninputs: {prompt: p2, seed: 2, width: 48, height: 32, batch_size: 2}\n"
                               "expect: {images: 2, width: 48, height: 32}\n")
    refs = root / "references"
    refs.mkdir()
    (refs / "square.png").write_bytes(render_png("wf-a:p1:1:0", 64, 64))
    (refs / "batch.png").write_bytes(render_png("wf-b:p2:2:0", 48, 32))
    return root


def render_png(seed: str, width: int = 64, height: int = 64) -> bytes:
    """A deterministic picture: smooth gradients whose direction depends on the seed."""
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    img = Image.new("RGB", (width, height))
    fx, fy, phase = rng.uniform(-3, 3), rng.uniform(-3, 3), rng.uniform(0, 255)
    img.putdata([(int((x * fx + y * fy) * 4 + phase) % 256, (x * 3) % 256, (y * 5) % 256)
                 for y in range(height) for x in range(width)])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@dataclass
class StandInApi:
    """Behaviour knobs per workflow: how each job ends and what it returns."""

    image_tag: str = "local/worker@sha256:" + "a" * 64
    fail_workflows: set[str] = field(default_factory=set)
    content_type: str = "image/png"
    renders: Callable[[str, dict[str, Any]], list[bytes]] | None = None
    polls_before_done: int = 1
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    objects: dict[str, bytes] = field(default_factory=dict)
    auth_headers_seen: list[str | None] = field(default_factory=list)
    url: str = ""
    status_padding: int = 0  # bytes of filler in every in-progress status answer (a runaway API)
    trickle_s: float = 0.0  # if set, in-progress status answers are sent one byte per trickle_s
    trickles_finished: int = 0  # status answers trickled to their last byte (none, if the client gave up)
    results_as: Any = None  # if set, a completed status answers this as its `results` (a malformed answer)
    # The ids GET /api/workflows lists: by default the workflows golden_suite's cases run (a full run fails on any
    # workflow served that no case runs).
    workflows: list[str] = field(default_factory=lambda: ["wf-a", "wf-b"])

    def render(self, workflow: str, inputs: dict[str, Any]) -> list[bytes]:
        if self.renders:
            return self.renders(workflow, inputs)
        w, h = int(inputs.get("width", 64)), int(inputs.get("height", 64))
        return [render_png(f"{workflow}:{inputs.get('prompt')}:{inputs.get('seed')}:{i}", w, h)
                for i in range(int(inputs.get("batch_size", 1)))]


def _handler(api: StandInApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj: Any) -> None:
            self._send(status, json.dumps(obj).encode())

        def _trickle(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            try:
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(api.trickle_s)
            except OSError:  # the client hung up
                return
            api.trickles_finished += 1

        def _authorized(self) -> bool:
            api.auth_headers_seen.append(self.headers.get("authorization"))
            if self.headers.get("authorization") != f"Bearer {TOKEN}":
                self._json(401, {"error": {"code": "unauthorized", "message": "bad token"}})
                return False
            return True

        def do_POST(self) -> None:
            if self.path != "/api/queue/create":
                return self._json(404, {"error": {"code": "not_found", "message": self.path}})
            if not self._authorized():
                return None
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            if not body.get("inputs", {}).get("prompt"):
                return self._json(400, {"error": {"code": "invalid_input", "message": "inputs.prompt is required"}})
            job_id = f"job-{len(api.jobs) + 1}"
            api.jobs[job_id] = {"workflow": body["workflow_id"], "inputs": body["inputs"], "polls": 0}
            return self._json(202, {"job_id": job_id, "status": "queued", "trace_id": "0" * 32})

        def do_GET(self) -> None:
            if self.path == "/api/workflows":
                if self._authorized():
                    self._json(200, {"workflows": [{"id": w, "version": f"{w}@1", "description": "", "parameters": []}
                                                   for w in api.workflows]})
                return None
            if self.path.startswith("/api/result/"):
                key = self.path.removeprefix("/api/result/")
                if not self._authorized():
                    return None
                if key not in api.objects:
                    return self._json(404, {"error": {"code": "not_found", "message": key}})
                return self._send(200, api.objects[key], api.content_type)
            if not self.path.startswith("/api/status/") or not self._authorized():
                return None if self.path.startswith("/api/status/") else self._json(404, {})
            job_id = self.path.removeprefix("/api/status/")
            job = api.jobs.get(job_id)
            if job is None:
                return self._json(404, {"error": {"code": "not_found", "message": job_id}})
            job["polls"] += 1
            if job["polls"] <= api.polls_before_done:
                body = json.dumps({"job_id": job_id, "status": "in_progress", "filler": "x" * api.status_padding})
                if api.trickle_s:
                    return self._trickle(body.encode())
                return self._send(200, body.encode())
            if job["workflow"] in api.fail_workflows:
                return self._json(200, {"job_id": job_id, "status": "failed", "error": "model missing",
                                        "worker_image_tag": api.image_tag})
            results = []
            for i, data in enumerate(api.render(job["workflow"], job["inputs"])):
                key = f"results/{job_id}/{i}.png"
                api.objects[key] = data
                results.append({"key": key, "content_type": api.content_type, "bytes": len(data),
                                "url": f"/api/result/{key}"})
            if api.results_as is not None:
                results = api.results_as
            return self._json(200, {"job_id": job_id, "status": "completed", "results": results,
                                    "worker_image_tag": api.image_tag, "workflow_version": f"{job['workflow']}@1"})

    return Handler


@contextmanager
def standin_api(api: StandInApi | None = None) -> Iterator[StandInApi]:
    api = api or StandInApi()
    with serving(api, _handler(api)):
        yield api


@contextmanager
def serving(api: StandInApi, handler: type[BaseHTTPRequestHandler]) -> Iterator[None]:
    """`handler` (a stand-in API's, or a subclass of it) served on a free loopback port, its URL in `api.url`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def invoke(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """`goldgate <argv>` in this process: (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err
