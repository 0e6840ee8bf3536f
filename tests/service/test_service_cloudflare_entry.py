"""The Cloudflare Worker entry against stand-ins with the Workers bindings' call shapes:
D1 (prepare/bind/all/run/first/batch, results via .to_py(), None must be bound as jsnull) backed
by SQLite, R2 (get/head, size, httpMetadata) backed by files, fetch backed by httpx."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import importlib
import json
import os
import sqlite3
import subprocess
import sys
import types
from collections.abc import Iterator
from email.utils import formatdate
from http import HTTPMethod
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_testkit import API_TOKEN, RUNPOD_KEY, WEBHOOK_SECRET, WORKFLOWS, check_log_lines, migrate

from service.signing import webhook_signature


class JsNull:
    def __repr__(self) -> str:
        return "jsnull"


JSNULL = JsNull()


class JsException(Exception):
    pass


class Proxy:
    """A JS object as Pyodide hands it over: attribute access, and .to_py() for plain data."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def to_py(self) -> Any:
        return self._value


# D1's limits (SQLite's defaults are far higher): a value or row over 2,000,000 bytes, a statement over
# 100,000 bytes or more than 100 bound parameters is refused, as D1 refuses them.
D1_LIMITS = ((sqlite3.SQLITE_LIMIT_LENGTH, 2_000_000), (sqlite3.SQLITE_LIMIT_SQL_LENGTH, 100_000),
             (sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100))


class D1Statement:
    def __init__(self, db: D1, sql: str, args: tuple = ()) -> None:
        self.db, self.sql, self.args = db, sql, args

    def bind(self, *args: Any) -> D1Statement:
        for arg in args:
            if arg is None:  # Python None arrives as `undefined`, which D1 refuses
                raise JsException("D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'")
        return D1Statement(self.db, self.sql, tuple(None if a is JSNULL else a for a in args))

    def _exec(self) -> dict:
        if self.sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            raise JsException("D1 does not support transactions statements")
        try:
            cursor = self.db.conn.execute(self.sql, self.args)
        except sqlite3.Error as exc:  # D1 rejects the promise with a JS Error named after the SQLite code
            raise JsException(f"D1_ERROR: {exc}: {getattr(exc, 'sqlite_errorname', 'SQLITE_ERROR')}") from None
        null = self.db.null  # what a NULL column becomes after .to_py()
        rows = [{d[0]: null if v is None else v for d, v in zip(cursor.description, r)} for r in cursor.fetchall()] \
            if cursor.description else []
        return {"results": rows, "success": True, "meta": {"changes": max(cursor.rowcount, 0)}}

    async def all(self) -> Proxy:
        self.db.calls.append(("all", self.sql))
        return Proxy(self._exec())

    async def run(self) -> Proxy:
        self.db.calls.append(("run", self.sql))
        return Proxy(self._exec())

    async def first(self) -> Proxy:
        rows = self._exec()["results"]
        return Proxy(rows[0] if rows else None)


class D1:
    """`null`: what a NULL column comes back as: jsnull on Pyodide >= 0.28, None before."""

    def __init__(self, path: Path, null: Any = None) -> None:
        self.null = null
        self.conn = sqlite3.connect(path, isolation_level=None)
        for limit, value in D1_LIMITS:
            self.conn.setlimit(limit, value)
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.calls: list[tuple[str, str]] = []

    def prepare(self, sql: str) -> D1Statement:
        return D1Statement(self, sql)

    async def batch(self, statements: list[D1Statement]) -> Proxy:
        self.calls.append(("batch", str(len(statements))))
        self.conn.execute("BEGIN")
        try:
            results = [s._exec() for s in statements]
        except BaseException:
            if self.conn.in_transaction:  # SQLite rolls back by itself on some errors (SQLITE_FULL)
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return Proxy(results)


class R2Object:
    def __init__(self, path: Path, content_type: str | None) -> None:
        self.size = path.stat().st_size
        self.httpMetadata = types.SimpleNamespace(contentType=content_type) if content_type else None
        self.etag = hashlib.md5(path.read_bytes()).hexdigest()  # R2: unquoted; httpEtag is it quoted
        self.httpEtag = f'"{self.etag}"'
        self.uploaded = JsDate(path.stat().st_mtime_ns // 1_000_000)
        data = path.read_bytes()
        self.body = JsReadableStream(iter([data[:4], data[4:]]))  # a ReadableStream, in two chunks


class JsDate:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def getTime(self) -> float:
        return float(self.ms)


class R2:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.types: dict[str, str | None] = {}

    def put(self, key: str, data: bytes, content_type: str | None) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.types[key] = content_type

    async def head(self, key: str) -> R2Object | None:
        path = self.root / key
        return R2Object(path, self.types.get(key)) if path.is_file() else None

    async def get(self, key: str) -> R2Object | None:
        return await self.head(key)


class WorkersResponse:
    def __init__(self, body: Any, status: int = 200, headers: dict | None = None) -> None:
        self.body, self.status, self.headers = body, status, headers or {}


class WorkerEntrypoint:
    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx, self.env = ctx, env


class JsHeaders:
    def __init__(self, pairs: dict[str, str]) -> None:
        self.pairs = pairs

    def entries(self) -> list[list[str]]:
        return [[k, v] for k, v in self.pairs.items()]


class JsReadableStream:
    """A request's body stream: each `await getReader().read()` pulls one chunk (a Uint8Array)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.pulled = 0
        self.cancelled = False

    def getReader(self) -> JsReadableStream:
        return self

    async def read(self) -> Any:
        chunk = None if self.cancelled else next(self.chunks, None)
        if chunk is None:
            return types.SimpleNamespace(done=True, value=None)
        self.pulled += len(chunk)
        return types.SimpleNamespace(done=False, value=types.SimpleNamespace(to_bytes=lambda: chunk))

    async def cancel(self) -> None:
        self.cancelled = True


class JsRequest:
    """bytes: a body with its Content-Length; an iterator of chunks: a chunked upload (no Content-Length)."""

    def __init__(self, method: str, url: str, body: bytes | Iterator[bytes] = b"", headers: dict | None = None) -> None:
        self.method, self.url = method, url
        declared = {"content-length": str(len(body))} if isinstance(body, bytes) else {}
        self.headers = JsHeaders({**declared, **(headers or {})})
        chunks = iter([body] if body else []) if isinstance(body, bytes) else body
        self.body = JsReadableStream(chunks) if body else None  # JS null when there is no body

    async def arrayBuffer(self) -> Any:  # reads the whole stream, as JS does
        chunks = []
        while not (result := await self.body.read()).done:
            chunks.append(result.value.to_bytes())
        data = b"".join(chunks)
        return types.SimpleNamespace(to_bytes=lambda: data)


def _to_js(value: Any, **_: Any) -> Any:
    return value


class _Proxy:
    """pyodide.ffi.create_proxy's: a Python callable JS can call until it is destroyed."""

    def __init__(self, function: Any) -> None:
        self.function, self.destroyed = function, False

    def __call__(self, *args: Any) -> Any:
        assert not self.destroyed, "a destroyed proxy was called"
        return self.function(*args)

    def destroy(self) -> None:
        self.destroyed = True


class JsBodyStream:
    """`new ReadableStream(source)` piped through workerd's `FixedLengthStream(n)`: `read_all()` reads it as the
    runtime sends a response body, pulling the source on demand."""

    def __init__(self, source: dict[str, Any], length: int | None = None) -> None:
        self.source, self.length = source, length
        self.chunks: list[bytes] = []
        self.closed = False
        self.error: Any = None

    @classmethod
    def new(cls, source: dict[str, Any], strategy: Any = None) -> JsBodyStream:
        return cls(source)

    def pipeThrough(self, fixed: FixedLengthStream) -> JsBodyStream:
        return JsBodyStream(self.source, fixed.length)

    def enqueue(self, chunk: Any) -> None:
        self.chunks.append(chunk.to_bytes())

    def close(self) -> None:
        self.closed = True

    async def read_all(self) -> bytes:
        while not (self.closed or self.error):
            await self.source["pull"](self)
        if self.error:
            raise JsException(str(self.error))
        data = b"".join(self.chunks)
        assert self.length == len(data), f"FixedLengthStream({self.length}) got {len(data)} bytes"
        return data


class FixedLengthStream:
    def __init__(self, length: int) -> None:
        self.length = length

    @classmethod
    def new(cls, length: int) -> FixedLengthStream:
        return cls(length)


def _create_once_callable(function: Any) -> Any:
    return function


class JsPromise:
    """`js.Promise`: `Promise.new(executor)` calls executor(resolve, reject) at once, as JS does."""

    @staticmethod
    def new(executor: Any) -> asyncio.Future:
        settled = asyncio.get_running_loop().create_future()
        executor(lambda value=None: settled.done() or settled.set_result(value), settled.set_exception)
        return settled


class Ctx:
    """The Workers ExecutionContext: the runtime keeps a request's work alive until each promise handed to
    waitUntil settles, even after its client disconnected; all other work of the request is cancelled."""

    def __init__(self) -> None:
        self.waiting: list[Any] = []

    def waitUntil(self, promise: Any) -> None:
        self.waiting.append(promise)


def _runtime_modules(with_jsnull: bool) -> list[tuple[str, types.ModuleType]]:
    """Stand-ins for what the Workers runtime provides: workers, pyodide.ffi, js, bundled_workflows."""
    workers = types.ModuleType("workers")
    workers.WorkerEntrypoint = WorkerEntrypoint
    workers.Response = WorkersResponse
    pyodide = types.ModuleType("pyodide")
    ffi = types.ModuleType("pyodide.ffi")
    ffi.JsException, ffi.to_js, ffi.create_once_callable = JsException, _to_js, _create_once_callable
    ffi.create_proxy = _Proxy
    js = types.ModuleType("js")
    js.Promise = JsPromise
    js.ReadableStream, js.FixedLengthStream, js.Error = JsBodyStream, FixedLengthStream, Exception
    js.Object = types.SimpleNamespace(fromEntries=dict)
    modules = [("workers", workers), ("pyodide", pyodide), ("pyodide.ffi", ffi), ("js", js)]
    if with_jsnull:  # Pyodide >= 0.28
        ffi.jsnull = JSNULL
    else:  # Pyodide 0.26 / 0.27 (Python 3.12): no jsnull; JS null only inside JS values, e.g. JSON.parse's
        js.JSON = types.SimpleNamespace(parse=lambda text: [JSNULL if v is None else v for v in json.loads(text)])
        js.Reflect = types.SimpleNamespace(apply=lambda fn, this, args: fn(*args))
    pyodide.ffi = ffi
    bundled = types.ModuleType("bundled_workflows")
    bundled.WORKFLOWS = {p.name: p.read_text() for p in WORKFLOWS.glob("*.json")}
    return [*modules, ("bundled_workflows", bundled)]


def _load_entry(monkeypatch: pytest.MonkeyPatch, with_jsnull: bool) -> Any:
    for name, module in _runtime_modules(with_jsnull):
        monkeypatch.setitem(sys.modules, name, module)
    return importlib.reload(importlib.import_module("service.cloudflare_entry"))


def _entry(monkeypatch: pytest.MonkeyPatch, with_jsnull: bool) -> Iterator[Any]:
    module = _load_entry(monkeypatch, with_jsnull)
    yield module
    module.Default._app = None
    monkeypatch.undo()
    importlib.reload(module)


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _entry(monkeypatch, with_jsnull=True)


@pytest.fixture
def entry_without_jsnull(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _entry(monkeypatch, with_jsnull=False)


def make_env(tmp_path: Path, runpod_base: str, null: Any = JSNULL, **overrides: str) -> types.SimpleNamespace:
    tmp_path.mkdir(parents=True, exist_ok=True)
    db_path = tmp_path / "d1.sqlite"
    migrate(db_path)
    env = {"DB": D1(db_path, null), "RESULTS": R2(tmp_path / "r2"), "API_TOKEN": API_TOKEN, "WEBHOOK_SECRET": WEBHOOK_SECRET,
           "RUNPOD_API_KEY": RUNPOD_KEY, "STACK": "staging", "RUNPOD_ENDPOINT_BASE": runpod_base,
           "RUNPOD_ENDPOINT_ID": "ep-test", "PUBLIC_BASE_URL": "https://api.example", "WORKFLOW_VERSION": "v",
           "WORKER_IMAGE_TAG": "", "EXECUTION_TIMEOUT_MS": "600000", "TTL_MS": "86400000",
           "MAX_BODY_BYTES": "65536", "SIGNED_URL_TTL_S": "3600", "GPU_TYPE": "NVIDIA L4", "GPU_COUNT": "2",
           "PRICE_PER_GPU_SECOND": "0.0005"}
    env.update(overrides)
    return types.SimpleNamespace(**env)


class Fetch:
    """`fetch(url, init)` with the Workers call shape, backed by httpx."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    async def __call__(self, url: str, init: dict) -> Any:
        self.calls.append((url, init))
        async with httpx.AsyncClient() as client:
            reply = await client.request(init["method"], url, headers=init["headers"], content=init.get("body"))

        async def text() -> str:
            return reply.text

        return types.SimpleNamespace(status=reply.status_code, text=text)


def test_config_from_env_parses_text_bindings_and_ignores_the_rest(entry, tmp_path):
    config = entry.config_from_env(make_env(tmp_path, "http://127.0.0.1:9/v2/ep"))
    assert config.gpu_count == 2 and config.price_per_gpu_second == 0.0005 and config.worker_image_tag is None
    assert config.stack == "staging" and config.max_body_bytes == 65536
    with pytest.raises(entry.ConfigError, match="GPU_COUNT must be a number"):
        entry.config_from_env(make_env(tmp_path / "x", "http://127.0.0.1:9/v2/ep", GPU_COUNT="two"))


def test_the_worker_serves_the_job_path_over_d1_r2_and_fetch(entry, tmp_path, fake_runpod, log_lines, capsys):
    env = make_env(tmp_path, fake_runpod.base)
    fetch = Fetch()
    worker = entry.Default(Ctx(), env)
    entry.Default._app = entry.build_app(env, fetch=fetch)
    auth = {"authorization": f"Bearer {API_TOKEN}"}

    async def call(method: str, path: str, body: Any = None, headers: dict | None = None) -> WorkersResponse:
        raw = json.dumps(body).encode() if body is not None else b""
        return await worker.fetch(JsRequest(method, "https://api.example" + path, raw, headers))

    async def scenario() -> None:
        created = await call("POST", "/api/queue/create", {"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}},
                             auth)
        assert created.status == 202 and isinstance(created.body, str)
        job_id = json.loads(created.body)["job_id"]
        [(url, init)] = fetch.calls
        assert url == fake_runpod.base + "/run" and init["headers"]["authorization"] == f"Bearer {RUNPOD_KEY}"
        assert json.loads(init["body"])["webhook"].startswith("https://api.example/api/runpod/webhook?job=")
        rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
        key = f"results/{job_id}/0.png"
        env.RESULTS.put(key, b"\x89PNG data", "image/png")
        hook = await call("POST", f"/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}",
                          {"id": rid, "status": "COMPLETED", "delayTime": 3, "executionTime": 1001,
                           "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 9}]}})
        assert json.loads(hook.body) == {"applied": True, "reason": "applied", "status": "completed"}
        # the transition is one D1 batch: the job, the delivery, the day's spend, the metrics row (review 34)
        assert ("batch", "4") in env.DB.calls
        status = json.loads((await call("GET", f"/api/status/{job_id}", headers=auth)).body)
        assert status["status"] == "completed" and status["cost_estimate_usd"] == 0.0005 * 2 * 2
        calls_before = len(env.DB.calls)
        metrics = json.loads((await call("GET", "/api/metrics", headers=auth)).body)
        assert metrics["overall"]["count"] == 1 and metrics["overall"]["run_ms"]["p50"] == 1001
        # the report's queries, today's spend and the clients' today: one round trip
        assert env.DB.calls[calls_before:] == [("batch", "5")]
        result = await call("GET", f"/api/result/{key}", headers=auth)
        assert result.status == 200 and await result.body.read_all() == b"\x89PNG data"
        assert result.headers["content-type"] == "image/png" and result.headers["content-length"] == "9"
        stored = env.RESULTS.root / key
        assert result.headers["etag"] == f'"{hashlib.md5(stored.read_bytes()).hexdigest()}"'
        assert result.headers["last-modified"] == formatdate(stored.stat().st_mtime_ns // 10**9, usegmt=True)
        current = await call("GET", f"/api/result/{key}", headers={**auth, "if-none-match": result.headers["etag"]})
        assert (current.status, current.body, current.headers["etag"]) == (304, None, result.headers["etag"])
        missing = await call("GET", f"/api/result/results/{job_id}/9.png", headers=auth)
        assert missing.status == 404
        big = await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", b"{}",
                                           {**auth, "content-length": "10000000"}))
        assert big.status == 413

    asyncio.run(scenario())
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert lines and all(json.loads(line)["component"] == "service" for line in lines)
    log_lines.extend(lines)  # validated against the schema and scanned for secrets at teardown


def test_a_chunked_body_over_the_limit_is_refused_having_read_only_just_past_it(entry, tmp_path, fake_runpod,
                                                                               capsys, log_lines):
    """Without a Content-Length the Worker cannot refuse up front; reading a 100 MiB upload in full
    before checking would hit the isolate's 128 MB memory limit."""
    env = make_env(tmp_path, fake_runpod.base)  # MAX_BODY_BYTES 65536
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    worker = entry.Default(Ctx(), env)
    auth = {"authorization": f"Bearer {API_TOKEN}"}
    chunk = b" " * 16384
    huge = JsRequest("POST", "https://api.example/api/queue/create", (chunk for _ in range(6400)), auth)
    body = json.dumps({"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode()
    small = JsRequest("POST", "https://api.example/api/queue/create", iter([body[:9], body[9:]]), auth)

    async def scenario() -> tuple[WorkersResponse, WorkersResponse]:
        return await worker.fetch(huge), await worker.fetch(small)

    refused, created = asyncio.run(scenario())
    assert refused.status == 413 and json.loads(refused.body)["error"]["code"] == "body_too_large"
    assert huge.body.pulled <= 65536 + len(chunk) and huge.body.cancelled  # stopped just past the limit
    assert created.status == 202, created.body  # a chunked body within the limit is read whole
    log_lines.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))


def test_an_unsigned_chunked_webhook_is_refused_having_read_only_just_past_the_clients_limit(entry, tmp_path,
                                                                                            fake_runpod, capsys,
                                                                                            log_lines):
    """The webhook's multi-megabyte limit is for RunPod's signed deliveries: before, anyone could make an
    isolate (128 MB) hold megabytes per request with a made-up signature."""
    env = make_env(tmp_path, fake_runpod.base)  # MAX_BODY_BYTES 65536
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    worker = entry.Default(Ctx(), env)
    chunk = b" " * 16384
    forged = JsRequest("POST", f"https://api.example/api/runpod/webhook?job={'a' * 32}&sig={'0' * 64}",
                       (chunk for _ in range(64)))  # 1 MiB: within the webhook limit
    refused = asyncio.run(worker.fetch(forged))
    assert refused.status == 401 and json.loads(refused.body)["error"]["code"] == "bad_signature"
    assert forged.body.pulled <= 65536 + len(chunk) and forged.body.cancelled
    log_lines.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))


def test_a_misconfigured_worker_answers_json_not_a_traceback(entry, tmp_path):
    env = make_env(tmp_path, "http://127.0.0.1:9/v2/ep", WEBHOOK_SECRET="short")
    entry.Default._app = None
    reply = asyncio.run(entry.Default(Ctx(), env).fetch(JsRequest("GET", "https://api.example/healthz")))
    assert reply.status == 500 and json.loads(reply.body)["error"]["code"] == "misconfigured"


def test_a_worker_missing_a_binding_or_with_a_broken_workflow_answers_json_and_logs_why(entry, tmp_path, monkeypatch,
                                                                                       capsys, log_lines):
    """A deploy without the D1 binding, or with a malformed bundled workflow, must answer the JSON 500 and
    leave a schema log line naming the fault, not an HTML error page and a bare Python traceback."""
    env = make_env(tmp_path, "http://127.0.0.1:9/v2/ep")
    del env.DB
    entry.Default._app = None
    reply = asyncio.run(entry.Default(Ctx(), env).fetch(JsRequest("GET", "https://api.example/healthz")))
    assert reply.status == 500 and json.loads(reply.body)["error"]["code"] == "misconfigured"
    assert "DB" in json.loads(reply.body)["error"]["message"]
    monkeypatch.setattr(sys.modules["bundled_workflows"], "WORKFLOWS", {"bad.json": "{"})
    reply = asyncio.run(entry.Default(Ctx(), make_env(tmp_path / "w", "http://127.0.0.1:9/v2/ep")).fetch(
        JsRequest("GET", "https://api.example/healthz")))
    assert reply.status == 500 and "bad.json" in json.loads(reply.body)["error"]["message"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(line["event"], line["level"]) for line in lines] == [("service.misconfigured", "error")] * 2
    assert "bad.json" in lines[1]["message"]
    log_lines.extend(json.dumps(line) for line in lines)
    assert entry.Default._app is None


def test_the_worker_reads_a_webhook_larger_than_the_client_body_limit(entry, tmp_path, fake_runpod, capsys, log_lines):
    """RunPod's webhook echoes the job's input beside the outcome: it must not be cut at the client's limit."""
    env = make_env(tmp_path, fake_runpod.base, MAX_BODY_BYTES="1024")
    fetch = Fetch()
    worker = entry.Default(Ctx(), env)
    entry.Default._app = entry.build_app(env, fetch=fetch)
    auth = {"authorization": f"Bearer {API_TOKEN}"}

    async def scenario() -> None:
        created = await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", json.dumps(
            {"workflow_id": "flux-schnell", "inputs": {"prompt": "p" * 400}}).encode(), auth))
        assert created.status == 202, created.body
        job_id = json.loads(created.body)["job_id"]
        [(_url, init)] = fetch.calls
        run = json.loads(init["body"])
        rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
        payload = {"id": rid, "status": "FAILED", "delayTime": 40, "executionTime": 700,
                   "error": "ComfyUI rejected the prompt: " + "node 6: value too long; " * 20,
                   "input": run["input"], "webhook": run["webhook"]}
        body = json.dumps(payload).encode()
        assert len(body) > 1024
        chunks = iter([body[:700], body[700:]])  # a chunked delivery, no Content-Length to go by
        hook = await worker.fetch(JsRequest("POST", f"https://api.example/api/runpod/webhook?job={job_id}&sig="
                                            f"{webhook_signature(WEBHOOK_SECRET, job_id)}", chunks))
        assert json.loads(hook.body) == {"applied": True, "reason": "applied", "status": "failed"}, hook.body
        big = await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", b" " * 1025, auth))
        assert big.status == 413

    asyncio.run(scenario())
    log_lines.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))


# Run in a fresh interpreter. The runtime stand-ins come from this module, which needs sqlite3 and httpx itself;
# then every service module is forgotten, and the entry is imported anew and serves two requests with the
# local-only packages, and the service modules infra leaves out of the upload, unimportable (a Worker has none).
_WORKER_ONLY = """
import asyncio, sys
from pathlib import Path
from test_service_cloudflare_entry import API_TOKEN, Ctx, Fetch, JsRequest, _runtime_modules, make_env
blocked = set(sys.argv[2].split(","))
for name in list(sys.modules):
    if name.split(".")[0] in {"service", *blocked}:
        del sys.modules[name]
sys.modules.update(dict.fromkeys(blocked))
sys.modules.update(_runtime_modules(with_jsnull=True))
import service.cloudflare_entry as entry
env = make_env(Path(sys.argv[1]), "http://127.0.0.1:9/v2/ep")
entry.Default._app = entry.build_app(env, fetch=Fetch())
worker = entry.Default(Ctx(), env)
auth = {"authorization": f"Bearer {API_TOKEN}"}
for path in ("/healthz", "/api/workflows"):
    reply = asyncio.run(worker.fetch(JsRequest("GET", "https://api.example" + path, b"", auth)))
    assert reply.status == 200, reply.body
"""


def test_the_worker_imports_nothing_local_only(tmp_path):
    from infra.worker_bundle import LOCAL_ONLY

    here = Path(__file__).resolve().parent
    unshipped = [f"service.{name.removesuffix('.py')}" for name in LOCAL_ONLY]
    blocked = ["sqlite3", "uvicorn", "boto3", "botocore", "httpx", "goldgate", "images", "infra", *unshipped]
    proc = subprocess.run([sys.executable, "-c", _WORKER_ONLY, str(tmp_path), ",".join(blocked)], cwd=here,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parents[1]), str(here)])},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    check_log_lines([line for line in proc.stdout.splitlines() if line.startswith("{")])


def test_on_a_pyodide_without_jsnull_the_worker_still_binds_null_and_uses_to_js(entry_without_jsnull, tmp_path,
                                                                                 fake_runpod, capsys, log_lines):
    """Pyodide 0.26/0.27 (the Python 3.12 runtimes) have no pyodide.ffi.jsnull. Importing it with to_js
    and JsException in one statement dropped all three to the CPython fallbacks there, so None was
    bound as undefined (D1 refuses it) and batch/fetch got unconverted Python objects."""
    entry = entry_without_jsnull
    assert entry.to_js is _to_js and entry.JsException is JsException and entry.jsnull is None
    env = make_env(tmp_path, fake_runpod.base, null=None)
    worker = entry.Default(Ctx(), env)
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    auth = {"authorization": f"Bearer {API_TOKEN}"}

    async def scenario() -> None:
        body = json.dumps({"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode()
        created = await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", body, auth))
        assert created.status == 202, created.body  # the insert binds NULLs (no RunPod id yet)
        metrics = await worker.fetch(JsRequest("GET", "https://api.example/api/metrics", b"", auth))
        assert metrics.status == 200, metrics.body  # `since` absent: bound as NULL
        assert env.DB.calls[-1] == ("batch", "5")  # the three percentile statements, today's spend, the clients' today

    asyncio.run(scenario())
    log_lines.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))


def test_a_null_column_read_back_as_jsnull_is_none_to_the_core(entry, tmp_path, fake_runpod, capsys, log_lines):
    """Pyodide 0.28 converts a NULL column to jsnull, which is neither None nor == None. A job whose
    RunPod id is still NULL (the webhook overtook /run's answer) must adopt the delivery's id, not
    be refused as runpod_id_mismatch."""
    env = make_env(tmp_path, fake_runpod.base)
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    worker = entry.Default(Ctx(), env)
    job_id = "ab" * 16
    env.DB.conn.execute(
        "INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, created_at, "
        "created_at_ms, updated_at) VALUES (?, 'staging', 'flux-schnell', 'v', '{}', ?, 'queued', "
        "'2026-11-28T00:00:00.000Z', 0, '2026-11-28T00:00:00.000Z')", (job_id, "cd" * 16))
    body = json.dumps({"id": "rp-early", "status": "FAILED", "delayTime": 1, "executionTime": 2,
                       "error": "CUDA out of memory"}).encode()

    async def deliver() -> WorkersResponse:
        return await worker.fetch(JsRequest(
            "POST", f"https://api.example/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}",
            body))

    reply = asyncio.run(deliver())
    assert json.loads(reply.body) == {"applied": True, "reason": "applied", "status": "failed"}
    assert env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone() == ("rp-early",)
    log_lines.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))


class UnavailableR2(R2):
    """R2 having a bad moment: the binding's promise rejects (a JS Error, as JsException in Python)."""

    async def head(self, key: str) -> R2Object | None:
        raise JsException(f"head: We encountered an internal error. Please try again. (10001) {key}")

    async def get(self, key: str) -> R2Object | None:
        raise JsException(f"get: We encountered an internal error. Please try again. (10001) {key}")


def test_r2_failing_answers_503_store_unavailable_like_the_local_store_not_a_500(entry, tmp_path, fake_runpod,
                                                                                capsys, log_lines):
    """The store port promises StoreUnavailable when the store does not answer: the webhook then says 503
    (nothing recorded, RunPod retries) and a result download says 'retry later', not 'internal error'."""
    env = make_env(tmp_path, fake_runpod.base)
    env.RESULTS = UnavailableR2(tmp_path / "r2")
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    worker = entry.Default(Ctx(), env)
    auth = {"authorization": f"Bearer {API_TOKEN}"}

    async def scenario() -> tuple[Any, ...]:
        body = json.dumps({"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode()
        created = await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", body, auth))
        job_id = json.loads(created.body)["job_id"]
        rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
        key = f"results/{job_id}/0.png"
        delivery = json.dumps({"id": rid, "status": "COMPLETED", "delayTime": 3, "executionTime": 1001,
                               "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 9}]}})
        hook = await worker.fetch(JsRequest(
            "POST", f"https://api.example/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}",
            delivery.encode()))
        got = await worker.fetch(JsRequest("GET", f"https://api.example/api/result/{key}", b"", auth))
        head = await worker.fetch(JsRequest("HEAD", f"https://api.example/api/result/{key}", b"", auth))
        return hook, got, head

    hook, got, head = asyncio.run(scenario())
    assert hook.status == 503 and json.loads(hook.body)["error"]["code"] == "store_unavailable"
    assert env.DB.conn.execute("SELECT status FROM jobs").fetchone() == ("queued",)
    assert env.DB.conn.execute("SELECT COUNT(*) FROM webhook_deliveries").fetchone() == (0,)
    assert got.status == 503 and json.loads(got.body)["error"]["code"] == "store_unavailable"
    assert head.status == 503
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert not any(json.loads(line)["event"] == "http.unhandled" for line in lines)
    log_lines.extend(lines)


class SdkRequest:
    """The `workers.Request` the Python Workers SDK wraps the JS Request in. Before compatibility date
    2026-02-17 (flag python_request_headers_preserve_commas; the stacks pin 2025-09-01) its `.headers` is
    an http.client.HTTPMessage holding every header value split at its commas, one entry per piece. Its
    `.method` is `HTTPMethod[js_object.method]`: a KeyError for a method that enum lacks (e.g. PROPFIND)."""

    def __init__(self, js_request: JsRequest) -> None:
        self.js_object = js_request

    @property
    def method(self) -> HTTPMethod:
        return HTTPMethod[self.js_object.method]

    @property
    def url(self) -> str:
        return self.js_object.url

    @property
    def body(self) -> Any:
        return self.js_object.body

    @property
    def headers(self) -> http.client.HTTPMessage:
        result = http.client.HTTPMessage()
        for key, value in self.js_object.headers.entries():
            for piece in value.split(","):
                result[key] = piece.strip()
        return result


def test_header_values_with_commas_reach_the_core_whole_through_the_sdk_request(entry, tmp_path, capsys,
                                                                                  log_lines):
    """An API token may hold a comma: read through the SDK's comma-split headers, the Worker saw only
    the piece after the last comma and answered 401 to the right token."""
    token = "tok-Api,Token-With,Commas-0123"
    env = make_env(tmp_path, "http://127.0.0.1:9/v2/ep", API_TOKEN=token)
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    worker = entry.Default(Ctx(), env)
    request = JsRequest("GET", "https://api.example/api/workflows", b"",
                        {"authorization": f"Bearer {token}", "accept": "application/json, */*;q=0.5"})
    core = asyncio.run(entry.to_core_request(SdkRequest(request),
                                            lambda _path, _query, _authorization, _method: 65536))
    assert core.header("authorization") == f"Bearer {token}"
    assert core.header("accept") == "application/json, */*;q=0.5"
    reply = asyncio.run(worker.fetch(SdkRequest(request)))
    assert reply.status == 200, reply.body
    log_lines.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))


def test_a_body_that_breaks_off_mid_read_answers_400_and_logs_a_schema_line(entry, tmp_path, fake_runpod, capsys,
                                                                            log_lines):
    """A client that disconnects mid-upload makes the body stream reject: the Worker must answer and log on
    goldgate.log.v1, not leave an uncaught exception (a plain-text traceback) to the runtime."""
    env = make_env(tmp_path, fake_runpod.base)
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    worker = entry.Default(Ctx(), env)

    def broken():
        yield b'{"workflow_id": '
        raise JsException("TypeError: Network connection lost.")

    request = JsRequest("POST", "https://api.example/api/queue/create", broken(),
                        {"authorization": f"Bearer {API_TOKEN}"})
    reply = asyncio.run(worker.fetch(request))
    assert reply.status == 400 and json.loads(reply.body)["error"]["code"] == "body_unreadable"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(obj["event"], obj["http"]["path"]) for obj in lines] == [("http.body_unreadable", "/api/queue/create")]
    log_lines.extend(json.dumps(obj) for obj in lines)


def _worker_with_job(entry: Any, tmp_path: Path, fake_runpod: Any, **env: str) -> tuple[Any, Any, str, str]:
    """A Worker over the D1 and R2 stand-ins, one job created through it and its result stored in R2."""
    env_ = make_env(tmp_path, fake_runpod.base, **env)
    entry.Default._app = entry.build_app(env_, fetch=Fetch())
    worker = entry.Default(Ctx(), env_)
    body = json.dumps({"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode()
    created = asyncio.run(worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", body,
                                                 {"authorization": f"Bearer {API_TOKEN}"})))
    job_id = json.loads(created.body)["job_id"]
    key = f"results/{job_id}/0.png"
    env_.RESULTS.put(key, b"\x89PNG data", "image/png")
    return worker, env_, job_id, key


def _webhook(worker: Any, job_id: str, payload: dict[str, Any]) -> Any:
    url = f"https://api.example/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}"
    return asyncio.run(worker.fetch(JsRequest("POST", url, json.dumps(payload).encode())))


def test_a_completed_webhook_with_timings_too_large_for_a_d1_row_completes_the_job_not_a_500(
        entry, tmp_path, fake_runpod, capsys, log_lines):
    """D1 refuses a row over 2,000,000 bytes (SQLite locally takes 1 GB). The worker's `timings` were stored
    whole: a COMPLETED webhook carrying 2 MB of them (the webhook limit allows it when max_body_bytes is raised)
    answered 500 on every RunPod retry and the job stayed queued for good; recovery hit the same wall."""
    worker, env, job_id, key = _worker_with_job(entry, tmp_path, fake_runpod, MAX_BODY_BYTES="524288")
    rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
    hook = _webhook(worker, job_id, {"id": rid, "status": "COMPLETED", "delayTime": 3, "executionTime": 1001,
                                     "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 9}],
                                                "timings": {"total_ms": 1001, "steps": ["x" * 100] * 21_000}}})
    assert hook.status == 200, hook.body
    assert json.loads(hook.body) == {"applied": True, "reason": "applied", "status": "completed"}
    assert env.DB.conn.execute("SELECT status, worker_timings_json FROM jobs").fetchone() == ("completed", None)
    assert env.DB.conn.execute("SELECT status FROM job_metrics").fetchone() == ("completed",)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [finished] = [line for line in lines if line["event"] == "job.finished"]
    assert finished["data"]["worker_timings_dropped"] == "over 16384 characters as JSON"
    log_lines.extend(json.dumps(line) for line in lines)


def test_a_completed_webhook_reporting_more_images_than_a_job_may_fails_the_job_with_the_reason(
        entry, tmp_path, fake_runpod, capsys, log_lines):
    """20,000 reported images made a results record over D1's 2,000,000-byte row (after 20,000 R2 HEADs in one
    invocation): a 500 on every retry and a job that never settled. Now the job fails, saying why."""
    worker, env, job_id, key = _worker_with_job(entry, tmp_path, fake_runpod, MAX_BODY_BYTES="524288")
    rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
    image = {"key": key, "content_type": "image/png", "bytes": 9}
    hook = _webhook(worker, job_id, {"id": rid, "status": "COMPLETED", "delayTime": 3, "executionTime": 1001,
                                     "output": {"images": [image] * 20_000}})
    assert hook.status == 200, hook.body
    assert json.loads(hook.body) == {"applied": True, "reason": "applied", "status": "failed"}
    status, error, results = env.DB.conn.execute("SELECT status, error, results_json FROM jobs").fetchone()
    assert (status, results) == ("failed", None)
    assert error == "worker output reports 20000 images; a job may report at most 500"
    log_lines.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))


def test_the_d1_stand_in_refuses_what_d1_refuses(tmp_path):
    """The stand-in must fail where D1 fails, or the tests above could not catch a write D1 refuses."""
    db_path = tmp_path / "d1.sqlite"
    migrate(db_path)
    d1 = D1(db_path)
    too_big = d1.prepare("SELECT length(?) AS n").bind("x" * 2_000_001)
    with pytest.raises(JsException, match=r"^D1_ERROR: string or blob too big: SQLITE_TOOBIG$"):
        asyncio.run(too_big.all())
    too_many = d1.prepare("SELECT " + ", ".join(["?"] * 101)).bind(*range(101))
    with pytest.raises(JsException, match="too many SQL variables"):
        asyncio.run(too_many.all())
    assert asyncio.run(d1.prepare("SELECT length(?) AS n").bind("x" * 2_000_000).all()).to_py()["results"] == [
        {"n": 2_000_000}]


def test_inputs_too_large_for_a_d1_row_are_a_413_naming_the_limit_not_a_500(entry, tmp_path, fake_runpod, capsys,
                                                                            log_lines):
    """An img2img workflow taking its image as a base64 string, on a stack whose max_body_bytes was raised (the
    spec allows 10 MB): the job's inputs are kept in its D1 row, which D1 refuses over 2,000,000 bytes. The
    client got 'internal error' for a 2 MB image (SQLite locally took it); now a 413 that says what to do."""
    from service.workflows import Registry

    img2img = {"id": "img2img", "version": "img2img@1.0.0", "parameters": [
        {"name": "image", "type": "string", "required": True}]}
    registry = Registry.from_texts({"img2img.json": json.dumps(img2img)})
    env = make_env(tmp_path, fake_runpod.base, MAX_BODY_BYTES="4000000")
    fetch = Fetch()
    entry.Default._app = entry.build_app(env, fetch=fetch, registry=registry)
    worker = entry.Default(Ctx(), env)

    def create(image_bytes: int) -> Any:
        body = json.dumps({"workflow_id": "img2img", "inputs": {"image": "A" * image_bytes}}).encode()
        return asyncio.run(worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", body,
                                                  {"authorization": f"Bearer {API_TOKEN}"})))

    refused = create(2_100_000)
    assert refused.status == 413, refused.body
    assert json.loads(refused.body)["error"] == {
        "code": "inputs_too_large", "message": "inputs are 2100012 bytes as JSON; a job's inputs may be at most "
                                               "1000000: send large data (e.g. images) by URL"}
    assert env.DB.conn.execute("SELECT COUNT(*) FROM jobs").fetchone() == (0,) and fetch.calls == []
    assert create(900_000).status == 202  # large inputs that fit are taken
    log_lines.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))


def test_a_reported_sha256_that_is_no_digest_is_not_stored_so_the_job_completes(entry, tmp_path, fake_runpod, capsys,
                                                                              log_lines):
    """Each image's `sha256` was stored whatever it held: 2 MB of it made the job's D1 row too big, a 500 on every
    retry. Only a sha256 digest (64 hex digits) is kept, and a width or height only when it is a pixel count."""
    worker, env, job_id, key = _worker_with_job(entry, tmp_path, fake_runpod, MAX_BODY_BYTES="524288")
    rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
    image = {"key": key, "content_type": "image/png", "bytes": 9, "sha256": "f" * 2_100_000, "width": True,
             "height": 768}
    hook = _webhook(worker, job_id, {"id": rid, "status": "COMPLETED", "delayTime": 3, "executionTime": 1001,
                                     "output": {"images": [image]}})
    assert hook.status == 200 and json.loads(hook.body)["status"] == "completed", hook.body
    [stored] = json.loads(env.DB.conn.execute("SELECT results_json FROM jobs").fetchone()[0])
    assert (stored["sha256"], stored["width"], stored["height"]) == (None, None, 768)
    log_lines.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))


class HeldRun(Fetch):
    """`fetch` whose /run answer is held back after RunPod took the job, until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.taken, self.release = asyncio.Event(), asyncio.Event()

    async def __call__(self, url: str, init: dict) -> Any:
        reply = await super().__call__(url, init)
        if url.endswith("/run"):
            self.taken.set()
            await self.release.wait()
        return reply


def test_a_create_whose_client_disconnects_while_runpod_answers_still_records_the_runpod_id(
        entry, tmp_path, fake_runpod, capsys, log_lines):
    """The runtime cancels a disconnected client's request, except work under ctx.waitUntil. Cut between
    RunPod taking the job and the id being recorded, the job would run and be billed with no RunPod id
    to recover it by, and the client, having no answer, would submit it again."""
    env, ctx = make_env(tmp_path, fake_runpod.base), Ctx()
    worker = entry.Default(ctx, env)
    body = json.dumps({"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode()

    async def scenario() -> None:
        fetch = HeldRun()
        entry.Default._app = entry.build_app(env, fetch=fetch)
        client = asyncio.ensure_future(worker.fetch(JsRequest(
            "POST", "https://api.example/api/queue/create", body, {"authorization": f"Bearer {API_TOKEN}"})))
        await fetch.taken.wait()
        client.cancel()  # the client disconnects
        with pytest.raises(asyncio.CancelledError):
            await client
        fetch.release.set()
        await asyncio.gather(*ctx.waiting)  # what the runtime still lets finish

    asyncio.run(scenario())
    log_lines.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))
    [(status, rid)] = env.DB.conn.execute("SELECT status, runpod_job_id FROM jobs").fetchall()
    assert status == "queued" and rid is not None
    assert len(fake_runpod.runs) == 1
    assert [json.loads(line)["runpod_job_id"] for line in log_lines if json.loads(line)["event"] == "job.submitted"] \
        == [rid]
