"""Helpers for the worker tests: sparse model trees, schema-checked log capture, S3 client, job builder, JSON posts,
and model trees read as another user."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import jsonschema
from botocore.config import Config

from images.worker.config import StorageConfig
from images.worker.manifest import load_manifest

REPO = Path(__file__).resolve().parents[2]
WORKER_DIR = REPO / "images" / "worker"
FIXTURES = REPO / "tests" / "fixtures" / "worker"
SCHEMA = json.loads((REPO / "docs" / "logging-schema-v1.json").read_text())
TRACE_ID = "0123456789abcdef0123456789abcdef"
ACCESS_KEY = "AKIDGOLDGATETEST0001"
SECRET_KEY = "s3cr3t-goldgate-test-value-never-logged"
NOBODY = 65534


def bake_models(root: Path, skip: tuple[str, ...] = (), manifest: Path = WORKER_DIR / "models.yaml") -> Path:
    """The manifest's files as sparse files of their manifest size (like a local image snapshot)."""
    for model in load_manifest(manifest).models:
        if model.file in skip:
            continue
        path = root / model.directory / model.file
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            f.truncate(model.size or 1)
    return root


def validate_log_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line is one schema-v1 JSON object; returns them parsed."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    lines = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        line = json.loads(raw)
        errors = sorted(validator.iter_errors(line), key=str)
        assert not errors, f"log line fails schema v1: {errors[0].message}: {raw}"
        lines.append(line)
    return lines


class LogCapture(io.StringIO):
    def lines(self) -> list[dict[str, Any]]:
        return validate_log_lines(self.getvalue())

    def events(self) -> list[str]:
        return [line["event"] for line in self.lines()]


def s3_client(endpoint: str):  # boto3 clients have no static type
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY,
                        config=Config(request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required"))


def worker_env(comfy_url: str, storage: StorageConfig | None, models: Path, **extra: str) -> dict[str, str]:
    env = {"COMFY_URL": comfy_url, "MODEL_ROOTS": str(models), "WORKER_IMAGE_TAG": "local/worker@sha256:" + "ab" * 32,
           "WORKFLOW_VERSION": "sdxl-txt2img@1.0.0,flux-schnell-lora@1.0.0", "STACK": "local",
           "GPU_TYPE": "NVIDIA GeForce RTX 4090", "COMFY_READY_TIMEOUT_S": "10", "COMFY_JOB_TIMEOUT_S": "20"}
    if storage is not None:
        env.update({"R2_ENDPOINT_URL": storage.endpoint_url, "R2_BUCKET": storage.bucket,
                    "R2_ACCESS_KEY_ID": storage.access_key_id, "R2_SECRET_ACCESS_KEY": storage.secret_access_key})
    env.update(extra)
    return env


def job(inputs: dict[str, Any] | None = None, workflow: str = "sdxl-txt2img", job_id: str = "job-1",
        **overrides: Any) -> dict[str, Any]:
    payload = {"workflow_id": workflow, "workflow_version": f"{workflow}@1.0.0",
               "inputs": {"prompt": "a lighthouse at dusk"} if inputs is None else inputs,
               "job_id": job_id, "trace_id": TRACE_ID, "result_prefix": f"results/{job_id}/"}
    payload.update(overrides)
    return {"id": f"rp-{job_id}", "input": payload}



class ComfyProxy:
    """A stand-in on 127.0.0.1 between the worker and the ComfyUI at `upstream`: every request is forwarded and its
    answer passed back. A test subclasses it to break or rewrite what passes: `intercept` answers a request itself,
    `answer` sends (or mangles) the answer ComfyUI gave."""

    def __init__(self, upstream: str) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self, None)

            def do_POST(self) -> None:
                proxy._handle(self, self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        self.upstream = upstream
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # a connection a test cut is no error
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def intercept(self, handler: BaseHTTPRequestHandler) -> bool:
        """Answer the request itself (True), or let it through to ComfyUI (False)."""
        return False

    def answer(self, handler: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str) -> None:
        send(handler, status, data, ctype)

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> None:
        if self.intercept(handler):
            return
        req = urllib.request.Request(self.upstream + handler.path, data=body, method=handler.command,
                                     headers={"Content-Type": "application/json"} if body else {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, data, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, data, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
        self.answer(handler, status, data, ctype)


def send(handler: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str, *, length: int | None = None,
         close: bool = False) -> None:
    """An answer of `data`, declaring `length` bytes (default: all of them); `close`: the connection ends after it."""
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(data) if length is None else length))
    if close:
        handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(data)
    handler.close_connection = handler.close_connection or close


def post_json(url: str, body: Any) -> tuple[int, Any]:
    """POST `body` as JSON; the status and the parsed answer (None for an empty one), error statuses included."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@contextlib.contextmanager
def as_another_user() -> Iterator[None]:
    """Runs the block as a user other than the files' owner, as the image's uid 10001 reads root's files. Root
    reads any file whatever its mode, so as root the block runs with effective uid `nobody`."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@contextlib.contextmanager
def open_tree() -> Iterator[Path]:
    """A directory every user may traverse (pytest's tmp_path is its owner's alone); removed afterwards, whatever
    modes the test left in it."""
    top = Path(tempfile.mkdtemp(prefix="goldgate-worker-test-"))
    top.chmod(0o755)
    try:
        yield top
    finally:
        for path in (top, *top.rglob("*")):
            with contextlib.suppress(OSError):
                path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(top)
