"""Service test kit: a migrated SQLite, a moto S3 server, a fake RunPod data plane, and a
harness that drives the core App. Every log line any test emits is validated against
docs/logging-schema-v1.json and scanned for secrets when the test ends."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import shutil
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from http.client import HTTPResponse
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from botocore.config import Config
from fake_runpod_plane import FakeRunPod
from moto.server import ThreadedMotoServer

from goldgate.migrations import apply_sqlite
from service.app import App, create_app
from service.config import ServiceConfig
from service.http import Request
from service.httpx_transport import HttpxTransport
from service.local_server import RunningServer, start_in_thread
from service.migrate import apply_sqlite as service_apply_sqlite
from service.runpod import HttpRunPodGateway
from service.s3_store import S3ResultStore
from service.signing import webhook_signature
from service.sqlite_database import SqliteDatabase

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "migrations"
WORKFLOWS = Path(__file__).resolve().parent / "fixtures" / "workflows"
SCHEMA = json.loads((ROOT / "docs" / "logging-schema-v1.json").read_text())

API_TOKEN = "tok-ApiTokenValue-7f3e9a1c2b4d"
WEBHOOK_SECRET = "whs-WebhookSecret-0d8c6b4a2e1f"
RUNPOD_KEY = "rpk-RunPodApiKey-5a7c9e1b3d2f"
S3_SECRET = "s3s-SecretAccessKey-9b1d3f5a7c"
S3_KEY_ID = "AKIATESTSERVICE"
BUCKET = "goldgate-results"
SECRETS = (API_TOKEN, WEBHOOK_SECRET, RUNPOD_KEY, S3_SECRET)

_SIGNED = re.compile(r"sig=[0-9A-Fa-f]")  # a URL signature ("sig=[redacted]" is the logger's mask)
_validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def check_log_lines(lines: list[str], extra_forbidden: tuple[str, ...] = ()) -> None:
    """Every line one schema-valid JSON object, with no secret (nor a webhook sig) in it."""
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError(f"log line is not JSON: {line}") from None
        errors = sorted(_validator.iter_errors(obj), key=str)
        assert not errors, f"log line violates schema: {errors[0].message}\n{line}"
        assert obj["component"] == "service"
        for secret in SECRETS + extra_forbidden:
            assert secret not in line, f"a secret leaked into a log line: {line}"
        assert not _SIGNED.search(line), f"a signed URL leaked into a log line: {line}"


class LogCapture(list):
    def sink(self, line: str) -> None:
        self.append(line)


@pytest.fixture(autouse=True)
def log_lines() -> Iterator[LogCapture]:
    captured = LogCapture()
    yield captured
    check_log_lines(list(captured))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3_client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET,
                        region_name="us-east-1",
                        config=Config(request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required",
                                      s3={"addressing_style": "path"}))


@pytest.fixture(scope="session")
def _s3_session_client(moto_endpoint: str) -> Any:
    """One boto3 client for the session: a client is stateless between calls (and thread-safe), and building
    one re-reads botocore's service JSON, a tenth of a second of CPU per test."""
    return s3_client(moto_endpoint)


@pytest.fixture
def s3(_s3_session_client: Any) -> Any:
    return _s3_session_client


@pytest.fixture(scope="session")
def _store_client(moto_endpoint: str) -> Any:
    """The botocore client `S3ResultStore.connect` builds (its real config), built once per session. Each test
    still gets its own S3ResultStore over it (tests patch the store object, never the client)."""
    return S3ResultStore.connect(moto_endpoint, BUCKET, S3_KEY_ID, S3_SECRET).client


@pytest.fixture
def fake_runpod() -> Iterator[FakeRunPod]:
    fake = FakeRunPod(RUNPOD_KEY).start()
    yield fake
    fake.stop()


def migrate(db_path: Path) -> None:
    apply_sqlite(db_path, MIGRATIONS)


@functools.cache
def _migrated_image() -> bytes:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    service_apply_sqlite(conn, MIGRATIONS)
    image = conn.serialize()
    conn.close()
    return image


def migrated_memory_db() -> sqlite3.Connection:
    """A new in-memory database with migrations/ applied (autocommit, as the metrics tests open theirs): the
    migrations run once per process and each call loads a copy of the result, about 0.1 ms instead of 5 ms, for
    property tests that build one per example."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.deserialize(_migrated_image())
    return conn


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """migrations/ applied once per session (apply_sqlite closes its connection, so the WAL is checkpointed
    into the one file); each test gets a byte copy, the same database `migrate` would have made for it."""
    path = tmp_path_factory.mktemp("migrated") / "db.sqlite"
    migrate(path)
    leftovers = sorted(p.name for p in path.parent.iterdir() if p != path)
    assert not leftovers, f"migrating left side files a copy of the database would miss: {leftovers}"
    return path


@pytest.fixture
def db_path(tmp_path: Path, _migrated_template: Path) -> Path:
    path = tmp_path / "db.sqlite"
    shutil.copyfile(_migrated_template, path)
    return path


def make_config(**overrides: Any) -> ServiceConfig:
    raw = {"stack": "test", "api_token": API_TOKEN, "webhook_secret": WEBHOOK_SECRET, "runpod_api_key": RUNPOD_KEY,
           "runpod_endpoint_base": "http://127.0.0.1:9/v2/ep-test", "public_base_url": "http://api.test",
           "workflows_dir": str(WORKFLOWS), "gpu_type": "NVIDIA GeForce RTX 4090", "gpu_count": 1,
           "worker_image_tag": "local/worker@sha256:" + "a" * 64, "workflow_version": "sdxl-txt2img@1.0.0",
           "s3_bucket": BUCKET, "s3_access_key_id": S3_KEY_ID, "s3_secret_access_key": S3_SECRET}
    raw.update(overrides)
    return ServiceConfig.from_mapping(raw)


@contextmanager
def edge_in_thread(tmp_path: Path, moto_endpoint: str, runpod_base: str, log_lines: LogCapture,
                   **overrides: Any) -> Iterator[RunningServer]:
    """The local server (its edge and the app) in a thread of this process, over a migrated tmp_path/db.sqlite,
    moto's S3 and the RunPod at `runpod_base`, its log lines into `log_lines`; `overrides` change the config."""
    config = make_config(runpod_endpoint_base=runpod_base, db_path=str(tmp_path / "db.sqlite"),
                         s3_endpoint_url=moto_endpoint, apply_migrations_from=str(ROOT / "migrations"), **overrides)
    server = start_in_thread(config, log_sink=log_lines.sink)
    yield server
    server.stop()


def create_head(length: int) -> bytes:
    """The head of an authorized POST /api/queue/create whose JSON body is `length` bytes long."""
    return (b"POST /api/queue/create HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + API_TOKEN.encode()
            + b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % length)


def count_jobs(server: RunningServer) -> int:
    """How many jobs the server's database holds."""
    conn = sqlite3.connect(server.service.app.config.db_path)
    try:
        return conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    finally:
        conn.close()


class Harness:
    """Drives the core App on one event loop, as a runtime adapter would."""

    def __init__(self, app: App, db: SqliteDatabase, s3: Any, fake: FakeRunPod, clock: list[float]) -> None:
        self.app = app
        self.db = db
        self.s3 = s3
        self.fake = fake
        self.clock = clock
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None, token: str | None = API_TOKEN,
             query: str = "", headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        hdrs = {"authorization": f"Bearer {token}"} if token else {}
        hdrs.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        response = self.run(self.app.handle(Request(method, path, query, hdrs, data)))
        payload = response.body
        if not isinstance(payload, (bytes, bytearray)):
            payload = self.run(_collect(payload))
        if payload and response.headers.get("content-type") == "application/json":  # HEAD: no body
            return response.status, json.loads(payload), dict(response.headers)
        return response.status, payload, dict(response.headers)

    def create(self, prompt: str = "a lighthouse", **inputs: Any) -> dict[str, Any]:
        status, body, _ = self.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                                   "inputs": {"prompt": prompt, **inputs}})
        assert status == 202, body
        return body

    def runpod_id(self, job_id: str) -> str:
        rows = self.run(self.db.query("SELECT runpod_job_id FROM jobs WHERE id = ?", (job_id,)))
        return rows[0]["runpod_job_id"]

    def deliver(self, job_id: str, payload: dict[str, Any], sig: str | None = None) -> tuple[int, Any, dict]:
        sig = sig if sig is not None else webhook_signature(WEBHOOK_SECRET, job_id)
        return self.call("POST", "/api/runpod/webhook", payload, token=None, query=f"job={job_id}&sig={sig}")

    def put_result(self, job_id: str, name: str = "0.png", data: bytes = b"\x89PNG fake image bytes",
                   content_type: str = "image/png") -> dict[str, Any]:
        key = f"results/{job_id}/{name}"
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=content_type, IfNoneMatch="*")
        return {"key": key, "content_type": content_type, "bytes": len(data), "sha256": "0" * 64,
                "width": 8, "height": 8}

    def completed(self, job_id: str, images: list[dict[str, Any]], execution_ms: int = 2500,
                  delay_ms: int = 800, **output: Any) -> dict[str, Any]:
        return {"id": self.runpod_id(job_id), "status": "COMPLETED", "delayTime": delay_ms,
                "executionTime": execution_ms,
                "output": {"images": images, "timings": {"total_ms": execution_ms},
                           "workflow_version": "sdxl-txt2img@1.0.0",
                           "worker_image_tag": "local/worker@sha256:" + "b" * 64,
                           "gpu_type": "NVIDIA GeForce RTX 4090", **output}}

    def job(self, job_id: str) -> dict[str, Any]:
        return self.run(self.db.query("SELECT * FROM jobs WHERE id = ?", (job_id,)))[0]

    def rows(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        return self.run(self.db.query(sql, params))


async def _collect(stream: Any) -> bytes:
    return b"".join([chunk async for chunk in stream])


@pytest.fixture
def svc(db_path: Path, moto_endpoint: str, fake_runpod: FakeRunPod, log_lines: LogCapture, s3: Any,
        _store_client: Any) -> Iterator[Harness]:
    config = make_config(runpod_endpoint_base=fake_runpod.base, db_path=str(db_path), s3_endpoint_url=moto_endpoint)
    db = SqliteDatabase(db_path)
    store = S3ResultStore(_store_client, BUCKET)
    transport = HttpxTransport()
    gateway = HttpRunPodGateway(transport, fake_runpod.base, RUNPOD_KEY, timeout_s=5)
    clock = [1_800_000_000.0]
    app = create_app(config, db, store, gateway, log_sink=log_lines.sink, clock=lambda: clock[0])
    harness = Harness(app, db, s3, fake_runpod, clock)
    yield harness
    harness.run(transport.aclose())
    harness.loop.close()
    db.close()


class LocalServer:
    """`python -m service.local_server` as a real subprocess; its stdout log is checked when it stops."""

    def __init__(self, tmp_path: Path, moto_endpoint: str, runpod_base: str, **overrides: Any) -> None:
        self.db_path = tmp_path / "service.sqlite"
        self.config_path = tmp_path / "service.json"
        self.port_file = tmp_path / "service.port"
        self.log_path = tmp_path / "service.log"
        config = {"stack": "test", "api_token": API_TOKEN, "webhook_secret": WEBHOOK_SECRET,
                  "runpod_api_key": RUNPOD_KEY, "runpod_endpoint_base": runpod_base,
                  "public_base_url": "http://127.0.0.1:1", "workflows_dir": str(WORKFLOWS), "host": "127.0.0.1",
                  "port": 0, "db_path": str(self.db_path), "s3_endpoint_url": moto_endpoint, "s3_bucket": BUCKET,
                  "s3_access_key_id": S3_KEY_ID, "s3_secret_access_key": S3_SECRET,
                  "apply_migrations_from": str(MIGRATIONS), "gpu_type": "NVIDIA L4",
                  "worker_image_tag": "local/worker@sha256:" + "c" * 64}
        config.update(overrides)
        self.config_path.write_text(json.dumps(config))
        self.config_path.chmod(0o600)
        self.proc: Any = None
        self.port = 0

    def start(self, timeout_s: float = 30, listen_fd: int | None = None) -> LocalServer:
        """Start it; with `listen_fd`, on that inherited listening socket (--listen-fd)."""
        import subprocess
        import sys
        import time

        self._log = self.log_path.open("w")
        inherit = ["--listen-fd", str(listen_fd)] if listen_fd is not None else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.local_server", "--config", str(self.config_path),
             "--port-file", str(self.port_file), *inherit], cwd=ROOT, stdout=self._log, stderr=subprocess.PIPE,
            text=True, pass_fds=() if listen_fd is None else (listen_fd,))
        deadline = time.monotonic() + timeout_s
        while not self.port_file.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"local server exited {self.proc.returncode}: {self.proc.stderr.read()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("local server did not write its port file in time")
            time.sleep(0.05)
        self.port = int(self.port_file.read_text())
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
        code = self.proc.wait(timeout=20)
        self.proc.stderr.close()
        self._log.close()
        self.proc = None
        return code

    def log_lines(self) -> list[str]:
        return [line for line in self.log_path.read_text().splitlines() if line.strip()]


@pytest.fixture
def local_server(tmp_path: Path, moto_endpoint: str, fake_runpod: FakeRunPod) -> Iterator[LocalServer]:
    server = LocalServer(tmp_path, moto_endpoint, fake_runpod.base).start()
    yield server
    server.stop()
    check_log_lines(server.log_lines())


@pytest.fixture(scope="module")
def shared_local_server(tmp_path_factory: pytest.TempPathFactory,
                        moto_endpoint: str) -> Iterator[LocalServer]:
    """`local_server`, one per module, for a module's tests that only send it requests and read what they
    caused (their own objects, jobs and log lines), so none sees another's; a module opts in by overriding
    `local_server` with it. Its whole log is checked when it stops, as `local_server` does. A server start
    costs ~1 s of CPU."""
    fake = FakeRunPod(RUNPOD_KEY).start()
    server = LocalServer(tmp_path_factory.mktemp("shared-server"), moto_endpoint, fake.base).start()
    try:
        yield server
    finally:
        server.stop()
        fake.stop()
    check_log_lines(server.log_lines())


class LosesTheRunPodIdWrite:
    """The database, failing the one write that records RunPod's id for a job (D1 can drop a call)."""

    def __init__(self, db):
        self.db = db

    def __getattr__(self, name):
        return getattr(self.db, name)

    async def execute(self, sql, params=()):
        if sql.startswith("UPDATE jobs SET runpod_job_id"):
            raise sqlite3.OperationalError("D1_ERROR: Network connection lost.")
        return await self.db.execute(sql, params)


def tls_hello_refused(port: int) -> HTTPResponse:
    """What the local server's edge answers a TLS ClientHello sent to its plain HTTP port on 127.0.0.1 (a refusal it
    writes itself, before the app sees any request): the response, its head read."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as tls:
        tls.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        refused = HTTPResponse(tls)
        refused.begin()
    return refused
