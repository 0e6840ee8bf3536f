"""docs/openapi.json held against the real local server (`python -m service.local_server`, over SQLite, moto
S3 and a fake RunPod data plane): good and bad requests to every route, and each real answer checked against
the document: its status is one the operation lists, every header the document names for it is there when
required and matches its schema, and its body matches the schema for that status (jsonschema, the document's
components resolved). Requests go out over http.client, which sends a path as written (httpx resolves dot
segments before sending)."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jsonschema
import pytest
from fake_runpod_plane import FakeRunPod
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from service_testkit import (
    API_TOKEN,
    BUCKET,
    RUNPOD_KEY,
    WEBHOOK_SECRET,
    LocalServer,
    check_log_lines,
    s3_client,
)

from service.routes import signed_result_query
from service.signing import webhook_signature

ROOT = Path(__file__).resolve().parents[2]
DOC = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
URI = "urn:goldgate:openapi"
REGISTRY = Registry().with_resource(URI, Resource.from_contents(DOC, default_specification=DRAFT202012))
METHODS = ("get", "head", "post", "put", "patch", "delete", "options", "trace")
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}
PNG = b"\x89PNG\r\n\x1a\n fake image bytes"

# Formats are checked as a generated client reads them: jsonschema checks "uri" only with a package this project
# does not install, so it is an absolute http(s) URL here (ResultLink.url: the 202's relative Location is no uri).
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("uri")
def _absolute_url(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and value.isascii() and " " not in value


# (operation, status) of every answer checked, for the last test: each operation was seen succeed and refuse.
SEEN: set[tuple[str, str, int]] = set()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lowercased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        try:
            return self.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None


def send(
    port: int,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    header_lines: list[tuple[str, str]] = (),
) -> Reply:
    """One request, its target sent byte for byte as given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, target, skip_host=False, skip_accept_encoding=True)
        for name, value in {**(headers or {})}.items():
            conn.putheader(name, value)
        for name, value in header_lines:
            conn.putheader(name, value)
        if body is not None and not any(n.lower() == "content-length" for n, _ in header_lines):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def _deref(node: dict[str, Any]) -> tuple[dict[str, Any], list[str] | None]:
    """(node, its document-local $ref followed; the pointer to where it ended, None if it did not move)."""
    parts = None
    while "$ref" in node:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in node["$ref"].removeprefix("#/").split("/")]
        node = DOC
        for part in parts:
            node = node[part]
    return node, parts


def _pointer(parts: list[str]) -> str:
    return "/" + "/".join(quote(p.replace("~", "~0").replace("/", "~1"), safe="~") for p in parts)


def check(verb: str, path: str, reply: Reply) -> Reply:
    """Hold `reply` (to `verb` on the documented `path`) to the document. A method the path does not take is
    held to the path's own operations, which list its 405."""
    item = DOC["paths"][path]
    op_verb = verb if verb in item else next(v for v in METHODS if v in item)
    responses = item[op_verb]["responses"]
    where = f"{verb.upper()} {path} -> {reply.status}"
    assert str(reply.status) in responses, (
        f"{where}: status not in the document ({sorted(responses)}); body {reply.body[:300]!r}"
    )
    response, moved = _deref(responses[str(reply.status)])
    base = moved or ["paths", path, op_verb, "responses", str(reply.status)]
    for name, header in response.get("headers", {}).items():
        header, _ = _deref(header)
        value = reply.headers.get(name.lower())
        if header.get("required"):
            assert value is not None, (
                f"{where}: header {name} is required by the document, missing: {reply.headers}"
            )
        if value is not None:
            errors = list(jsonschema.Draft202012Validator(header["schema"]).iter_errors(value))
            assert not errors, f"{where}: header {name}: {value!r}: {errors[0].message}"
    content = response.get("content")
    if verb == "head" or reply.status == 304:
        assert reply.body == b"", where
    elif not content:
        assert reply.body == b"", f"{where}: a body the document does not describe: {reply.body[:200]!r}"
    else:
        media = reply.headers.get("content-type", "").split(";")[0].strip()
        assert media in content, f"{where}: Content-Type {media!r} is not one of {sorted(content)}"
        if media == "application/json":
            schema = {"$ref": URI + "#" + _pointer([*base, "content", "application/json", "schema"])}
            validator = jsonschema.Draft202012Validator(schema, registry=REGISTRY, format_checker=FORMATS)
            errors = sorted(validator.iter_errors(reply.json()), key=lambda e: list(e.absolute_path))
            assert not errors, (
                f"{where}: body {reply.body[:400]!r}: {errors[0].message} at {list(errors[0].absolute_path)}"
            )
    SEEN.add((verb if verb in item else op_verb, path, reply.status))
    return reply


class ContractRunPod(FakeRunPod):
    """The fake RunPod data plane, plus `POST /cancel/<id>` (RunPod's answer `{"id", "status"}`), and a /run
    that can be held until the test releases it (a create whose submission is still in flight)."""

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.cancel_mode = "answer"  # answer | error | busy | refuse | running
        self.hold = False
        self.received = threading.Event()
        self.release = threading.Event()

    def reset(self) -> None:
        self.run_mode, self.status_mode, self.cancel_mode, self.hold = "accept", "answer", "answer", False
        self.received.clear()
        self.release.clear()

    def _handler(self) -> Any:
        base = super()._handler()
        fake = self

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:
                prefix = f"/v2/{fake.endpoint_id}/cancel/"
                if not self.path.startswith(prefix):
                    return self._held_run() if fake.hold else super().do_POST()
                self.rfile.read(int(self.headers.get("content-length") or 0))
                if not self._authorized():
                    return None
                rid = self.path[len(prefix) :]
                known = fake.jobs.get(rid)
                if fake.cancel_mode == "error":
                    return self._reply(500, {"error": "internal error"})
                if fake.cancel_mode == "busy":
                    return self._reply(429, {"error": "rate limited"})
                if fake.cancel_mode == "refuse":
                    return self._reply(400, {"error": "job cannot be cancelled"})
                if fake.cancel_mode == "running":
                    return self._reply(200, {"id": rid, "status": "IN_PROGRESS"})
                if known is None:
                    return self._reply(404, {"error": "request does not exist"})
                fake.set_status(rid, {**known, "status": "CANCELLED", "executionTime": 1200})
                return self._reply(200, {"id": rid, "status": "CANCELLED"})

            def _held_run(self) -> None:
                """/run, answered only once the test releases it (its body is in `runs` before that)."""
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                with fake._lock:
                    fake.runs.append(body)
                fake.received.set()
                fake.release.wait(20)
                rid = f"held-{body['input']['job_id']}-u1"
                fake.set_status(rid, {"id": rid, "status": "IN_QUEUE"})
                self._reply(200, {"id": rid, "status": "IN_QUEUE"})

        return Handler


@pytest.fixture(scope="module")
def runpod() -> Iterator[ContractRunPod]:
    fake = ContractRunPod(RUNPOD_KEY).start()
    yield fake
    fake.release.set()
    fake.stop()


@pytest.fixture(autouse=True)
def _fresh_runpod(runpod: ContractRunPod) -> Iterator[None]:
    runpod.reset()
    yield
    runpod.release.set()
    runpod.reset()


def _server(tmp: Path, moto_endpoint: str, runpod: ContractRunPod, **overrides: Any) -> Iterator[LocalServer]:
    server = LocalServer(tmp, moto_endpoint, runpod.base, **overrides).start()
    try:
        yield server
    finally:
        server.stop()
        check_log_lines(server.log_lines())


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, runpod: ContractRunPod
) -> Iterator[LocalServer]:
    yield from _server(tmp_path_factory.mktemp("openapi-live"), moto_endpoint, runpod)


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def troubled(
    tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, runpod: ContractRunPod
) -> Iterator[LocalServer]:
    """A server whose result store is unreachable and whose stack takes one job in flight."""
    yield from _server(
        tmp_path_factory.mktemp("openapi-troubled"),
        moto_endpoint,
        runpod,
        s3_endpoint_url=f"http://127.0.0.1:{_dead_port()}",
        max_jobs_in_flight=1,
    )


def call(
    server: LocalServer,
    verb: str,
    path: str,
    target: str,
    body: Any = None,
    *,
    auth: bool = True,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    all_headers = {
        **(AUTH if auth else {}),
        **({"Content-Type": "application/json"} if data else {}),
        **(headers or {}),
    }
    return check(verb, path, send(server.port, verb.upper(), target, data, all_headers))


def create(server: LocalServer, **headers: str) -> dict[str, Any]:
    reply = call(server, "post", "/api/queue/create", "/api/queue/create", CREATE, headers=headers)
    assert reply.status == 202, reply.body
    return reply.json()


def status_of(server: LocalServer, job_id: str) -> dict[str, Any]:
    reply = call(server, "get", "/api/status/{job_id}", f"/api/status/{job_id}")
    assert reply.status == 200, reply.body
    return reply.json()


def webhook(
    server: LocalServer, job_id: str, payload: Any, *, raw: bytes | None = None, sig: str | None = None
) -> Reply:
    sig = webhook_signature(WEBHOOK_SECRET, job_id) if sig is None else sig
    return call(
        server,
        "post",
        "/api/runpod/webhook",
        f"/api/runpod/webhook?job={job_id}&sig={sig}",
        payload,
        raw=raw,
        auth=False,
    )


def completed_job(server: LocalServer, moto_endpoint: str) -> tuple[str, str]:
    """A job completed through its signed webhook, with one PNG in the store: (job id, result key)."""
    job_id = create(server)["job_id"]
    rid = status_of(server, job_id)["runpod_job_id"]
    key = f"results/{job_id}/0.png"
    s3_client(moto_endpoint).put_object(Bucket=BUCKET, Key=key, Body=PNG, ContentType="image/png")
    reply = webhook(
        server,
        job_id,
        {
            "id": rid,
            "status": "COMPLETED",
            "delayTime": 10,
            "executionTime": 900,
            "output": {
                "images": [
                    {"key": key, "content_type": "image/png", "bytes": len(PNG), "width": 8, "height": 8}
                ]
            },
        },
    )
    assert (reply.status, reply.json()["reason"]) == (200, "applied"), reply.body
    return job_id, key


# --- the routes ---------------------------------------------------------------------------------------------


def test_health_answers_as_documented(server: LocalServer) -> None:
    assert call(server, "get", "/healthz", "/healthz", auth=False).json()["status"] == "ok"
    assert call(server, "head", "/healthz", "/healthz", auth=False).status == 200
    refused = call(server, "put", "/healthz", "/healthz", {}, auth=False)
    assert (refused.status, refused.code, refused.headers["allow"]) == (
        405,
        "method_not_allowed",
        "GET, HEAD",
    )


def test_workflows_answers_and_refuses_as_documented(server: LocalServer) -> None:
    listed = call(server, "get", "/api/workflows", "/api/workflows").json()["workflows"]
    assert {w["id"] for w in listed} == {"sdxl-txt2img", "flux-schnell"}
    assert call(server, "head", "/api/workflows", "/api/workflows").status == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {API_TOKEN}"}):
        refused = call(server, "get", "/api/workflows", "/api/workflows", auth=False, headers=headers)
        assert (refused.status, refused.code) == (401, "unauthorized")
    assert call(server, "delete", "/api/workflows", "/api/workflows").status == 405


def test_create_accepts_a_job_and_replays_it_for_its_idempotency_key(server: LocalServer) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    first = create(
        server, **{"Idempotency-Key": "key-review18-api", "traceparent": f"00-{trace}-b7ad6b7169203331-01"}
    )
    assert first["status"] == "queued" and first["trace_id"] == trace
    replay = call(
        server,
        "post",
        "/api/queue/create",
        "/api/queue/create",
        CREATE,
        headers={"Idempotency-Key": "key-review18-api"},
    )
    assert (replay.status, replay.json()["job_id"], replay.headers.get("idempotent-replayed")) == (
        202,
        first["job_id"],
        "true",
    )
    other = call(
        server,
        "post",
        "/api/queue/create",
        "/api/queue/create",
        {**CREATE, "inputs": {"prompt": "another"}},
        headers={"Idempotency-Key": "key-review18-api"},
    )
    assert (other.status, other.code, other.json()["error"]["job_id"]) == (
        422,
        "idempotency_key_reused",
        first["job_id"],
    )


@pytest.mark.parametrize(
    ("raw", "headers", "code"),
    [
        (b"", {}, "invalid_json"),
        (b'{"workflow_id": ', {}, "invalid_json"),
        (b"\xff\xfe", {}, "invalid_json"),
        (b"[" * 200 + b"]" * 200, {}, "invalid_json"),
        (b"[]", {}, "invalid_body"),
        (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}, "priority": 1}', {}, "unknown_field"),
        (b'{"workflow_id": 5}', {}, "invalid_workflow_id"),
        (b'{"workflow_id": "nope"}', {}, "unknown_workflow"),
        (b'{"workflow_id": "sdxl-txt2img", "inputs": []}', {}, "invalid_inputs"),
        (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x", "seed": 1}}', {}, "unknown_input"),
        (b'{"workflow_id": "sdxl-txt2img", "inputs": {}}', {}, "missing_input"),
        (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x", "width": "big"}}', {}, "invalid_input"),
        (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x", "width": 99999}}', {}, "invalid_input"),
        (json.dumps(CREATE).encode(), {"Idempotency-Key": "has space"}, "invalid_idempotency_key"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_create_refuses_bad_bodies_with_the_documented_400s(
    server: LocalServer, raw: bytes, headers: dict[str, str], code: str
) -> None:
    reply = call(server, "post", "/api/queue/create", "/api/queue/create", raw=raw, headers=headers)
    assert (reply.status, reply.code) == (400, code), reply.body


def test_create_refuses_no_token_an_oversized_body_and_a_get(server: LocalServer) -> None:
    assert call(server, "post", "/api/queue/create", "/api/queue/create", CREATE, auth=False).status == 401
    big = call(
        server, "post", "/api/queue/create", "/api/queue/create", raw=b'{"x": "' + b"a" * 70_000 + b'"}'
    )
    assert (big.status, big.code) == (413, "body_too_large")
    wrong = call(server, "get", "/api/queue/create", "/api/queue/create")
    assert (wrong.status, wrong.headers["allow"]) == (405, "POST")
    preflight = call(
        server,
        "options",
        "/api/queue/create",
        "/api/queue/create",
        auth=False,
        headers={"Origin": "http://app.test", "Access-Control-Request-Method": "POST"},
    )
    assert (preflight.status, preflight.code) == (405, "method_not_allowed")  # no CORS, as documented


@pytest.mark.parametrize(
    ("mode", "status", "retry_after"),
    [("refuse", 502, False), ("busy", 503, True), ("error", 503, False), ("garbage", 503, False)],
)
def test_create_answers_runpods_trouble_as_documented(
    server: LocalServer, runpod: ContractRunPod, mode: str, status: int, retry_after: bool
) -> None:
    runpod.run_mode = mode
    reply = call(server, "post", "/api/queue/create", "/api/queue/create", CREATE)
    assert reply.status == status, reply.body
    assert ("retry-after" in reply.headers) == retry_after  # only where sending it again cannot bill twice
    assert len(reply.json()["error"]["job_id"]) == 32


def test_create_over_the_cap_is_a_429_with_retry_after(troubled: LocalServer) -> None:
    create(troubled)
    full = call(troubled, "post", "/api/queue/create", "/api/queue/create", CREATE)
    assert (full.status, full.code, full.headers["retry-after"]) == (429, "queue_full", "30")


def test_a_signed_webhook_completes_a_job_and_status_and_result_show_it(
    server: LocalServer, moto_endpoint: str
) -> None:
    job_id, key = completed_job(server, moto_endpoint)
    job = status_of(server, job_id)
    assert job["status"] == "completed" and [r["key"] for r in job["results"]] == [key]
    again = webhook(
        server,
        job_id,
        {
            "id": job["runpod_job_id"],
            "status": "COMPLETED",
            "delayTime": 10,
            "executionTime": 900,
            "output": {
                "images": [
                    {"key": key, "content_type": "image/png", "bytes": len(PNG), "width": 8, "height": 8}
                ]
            },
        },
    )
    assert again.json()["reason"] == "duplicate"
    url = urlsplit(job["results"][0]["url"])
    target = f"{url.path}?{url.query}"
    signed = call(server, "get", "/api/result/{key}", target, auth=False)
    assert (signed.status, signed.body, signed.headers["content-type"]) == (200, PNG, "image/png")
    assert signed.headers["content-disposition"] == 'inline; filename="0.png"'
    bearer = call(server, "get", "/api/result/{key}", "/api/result/" + quote(key, safe=""))  # '/' as %2F
    assert bearer.body == PNG
    head = call(server, "head", "/api/result/{key}", f"/api/result/{key}")
    assert head.headers["content-length"] == str(len(PNG))
    cached = call(
        server,
        "get",
        "/api/result/{key}",
        f"/api/result/{key}",
        headers={"If-None-Match": signed.headers["etag"]},
    )
    assert cached.status == 304
    assert call(server, "head", "/api/status/{job_id}", f"/api/status/{job_id}").status == 200


def test_webhook_refusals_are_documented(server: LocalServer) -> None:
    job_id = create(server)["job_id"]
    rid = status_of(server, job_id)["runpod_job_id"]
    unknown = "f" * 32
    cases = [
        (webhook(server, job_id, {"id": rid, "status": "COMPLETED"}, sig="0" * 64), 401, "bad_signature"),
        (
            call(server, "post", "/api/runpod/webhook", f"/api/runpod/webhook?job={job_id}", {}, auth=False),
            401,
            "bad_signature",
        ),
        (
            call(
                server,
                "post",
                "/api/runpod/webhook",
                "/api/runpod/webhook?job=nope&sig=" + "0" * 64,
                {},
                auth=False,
            ),
            401,
            "bad_signature",
        ),
        (
            call(
                server,
                "post",
                "/api/runpod/webhook",
                f"/api/runpod/webhook?job={job_id}",
                raw=b"x" * 100_000,
                auth=False,
            ),
            401,
            "bad_signature",
        ),
        (webhook(server, unknown, {"id": "r-1", "status": "COMPLETED"}), 404, "unknown_job"),
        (webhook(server, job_id, None, raw=b"{not json"), 400, "invalid_json"),
        (webhook(server, job_id, {"id": rid, "status": 5}), 400, "invalid_payload"),
        (webhook(server, job_id, {"status": "COMPLETED"}), 400, "invalid_payload"),
        (webhook(server, job_id, None, raw=b'{"id": "' + b"a" * 1_500_000 + b'"}'), 413, "body_too_large"),
    ]
    for reply, status, code in cases:
        assert (reply.status, reply.code) == (status, code), reply.body[:300]
    # RunPod is no bearer client: the challenge names the URL's signature (RFC 9110 wants one on every 401)
    assert cases[0][0].headers["www-authenticate"] == 'Signature realm="runpod-webhook", param="sig"'
    wrong = call(server, "get", "/api/runpod/webhook", f"/api/runpod/webhook?job={job_id}", auth=False)
    assert (wrong.status, wrong.headers["allow"]) == (405, "POST")


def test_status_refusals_are_documented(server: LocalServer) -> None:
    for target, status, code in [
        ("/api/status/" + "f" * 32, 404, "unknown_job"),
        ("/api/status/NOT-A-JOB", 404, "unknown_job"),
        ("/api/status/a/b", 404, "not_found"),
        ("/api/status/" + "a" * 201, 404, "not_found"),
    ]:
        reply = call(server, "get", "/api/status/{job_id}", target)
        assert (reply.status, reply.code) == (status, code), target
    assert call(server, "get", "/api/status/{job_id}", "/api/status/" + "f" * 32, auth=False).status == 401
    assert call(server, "post", "/api/status/{job_id}", "/api/status/" + "f" * 32, {}).status == 405


def test_result_refuses_traversal_bad_signatures_and_missing_objects(
    server: LocalServer, moto_endpoint: str
) -> None:
    job_id, key = completed_job(server, moto_endpoint)
    for target in [
        f"/api/result/results/{job_id}/../../secret",
        f"/api/result/results/{job_id}/%2e%2e/x",
        f"/api/result/results/{job_id}/..%2fx",
        f"/api/result/results%252F{job_id}%252F0.png",
        "/api/result/..\\..\\etc\\passwd",
        f"/api/result/results/{job_id}/outcome.json",
        f"/api/result/results/{job_id}/missing.png",
        "/api/result/" + "a" * 1001,
    ]:
        reply = call(server, "get", "/api/result/{key}", target)
        assert (reply.status, reply.code) == (404, "not_found"), target
    expired = f"/api/result/{key}?{signed_result_query(WEBHOOK_SECRET, key, int(time.time()) - 10)}"
    forged = f"/api/result/{key}?exp={int(time.time()) + 60}&sig={'0' * 64}"
    for target in (expired, forged):
        reply = call(server, "get", "/api/result/{key}", target, auth=False)
        assert (reply.status, reply.code) == (403, "url_expired_or_invalid")
        assert call(server, "get", "/api/result/{key}", target).status == 200  # the token still opens it
    unsigned = call(server, "get", "/api/result/{key}", f"/api/result/{key}", auth=False)
    assert (unsigned.status, unsigned.code, unsigned.headers["www-authenticate"]) == (
        401,
        "unauthorized",
        "Bearer",
    )
    assert call(server, "post", "/api/result/{key}", f"/api/result/{key}", {}).status == 405


def test_a_stored_non_image_is_an_attachment(server: LocalServer, moto_endpoint: str) -> None:
    key = f"results/{'e' * 32}/page.html"
    s3_client(moto_endpoint).put_object(Bucket=BUCKET, Key=key, Body=b"<script>", ContentType="text/html")
    reply = call(server, "get", "/api/result/{key}", f"/api/result/{key}")
    assert (reply.headers["content-type"], reply.headers["content-disposition"]) == (
        "application/octet-stream",
        'attachment; filename="page.html"',
    )


def test_an_unreachable_store_is_a_503_with_retry_after(troubled: LocalServer) -> None:
    reply = call(troubled, "get", "/api/result/{key}", f"/api/result/results/{'d' * 32}/0.png")
    assert (reply.status, reply.code, reply.headers["retry-after"]) == (503, "store_unavailable", "5")
    job = (_jobs(troubled) or [create(troubled)["job_id"]])[
        0
    ]  # the stack takes one job: it may be in already
    rid = status_of(troubled, job)["runpod_job_id"]
    key = f"results/{job}/0.png"
    delivery = {
        "id": rid,
        "status": "COMPLETED",
        "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 3}]},
    }
    answered = webhook(troubled, job, delivery)
    assert (answered.status, answered.code) == (503, "store_unavailable")


def _jobs(server: LocalServer) -> list[str]:
    with sqlite3.connect(server.db_path) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM jobs")]


def test_metrics_answers_and_refuses_as_documented(server: LocalServer) -> None:
    report = call(server, "get", "/api/metrics", "/api/metrics").json()
    assert report["percentile_method"] == "nearest-rank"
    since = call(server, "get", "/api/metrics", "/api/metrics?since=2026-01-31T00:00:00Z").json()
    assert since["since"] == "2026-01-31T00:00:00.000Z"
    bad = call(server, "get", "/api/metrics", "/api/metrics?since=yesterday")
    assert (bad.status, bad.code, bad.json()["error"]["field"]) == (400, "invalid_since", "since")
    assert call(server, "head", "/api/metrics", "/api/metrics").status == 200
    assert call(server, "get", "/api/metrics", "/api/metrics", auth=False).status == 401
    assert call(server, "post", "/api/metrics", "/api/metrics", {}).status == 405


def test_the_job_list_answers_and_refuses_as_documented(server: LocalServer) -> None:
    created = {create(server)["job_id"] for _ in range(3)}
    first = call(server, "get", "/api/jobs", "/api/jobs?limit=2").json()
    assert len(first["jobs"]) == 2 and first["next_cursor"]
    rest = call(server, "get", "/api/jobs", f"/api/jobs?limit=200&cursor={first['next_cursor']}").json()
    assert created <= {job["job_id"] for job in first["jobs"] + rest["jobs"]} and rest["next_cursor"] is None
    assert call(server, "get", "/api/jobs", "/api/jobs?status=queued,in_progress&client=alice").json()["jobs"] == []
    bad = call(server, "get", "/api/jobs", "/api/jobs?limit=0")
    assert (bad.status, bad.code, bad.json()["error"]["field"]) == (400, "invalid_query", "limit")
    assert call(server, "head", "/api/jobs", "/api/jobs").status == 200
    assert call(server, "get", "/api/jobs", "/api/jobs", auth=False).status == 401
    assert call(server, "post", "/api/jobs", "/api/jobs", {}).status == 405


def test_recover_answers_and_refuses_as_documented(server: LocalServer, runpod: ContractRunPod) -> None:
    path = "/api/admin/recover/{job_id}"
    job_id = create(server)["job_id"]
    rid = status_of(server, job_id)["runpod_job_id"]
    applied = call(server, "post", path, f"/api/admin/recover/{job_id}")
    assert (applied.status, applied.json()["runpod_status"]) == (200, "IN_QUEUE")
    for raw, status, code in [
        (b"[]", 400, "invalid_body"),
        (b"{nope", 400, "invalid_json"),
        (b'{"runpod_job_id": "../x"}', 400, "invalid_runpod_job_id"),
        (b'{"runpod_job_id": "other-u1"}', 409, "runpod_id_recorded"),
    ]:
        reply = call(server, "post", path, f"/api/admin/recover/{job_id}", raw=raw)
        assert (reply.status, reply.code) == (status, code), reply.body
    runpod.set_status(rid, {"id": rid, "status": "SOMETHING"})
    bad = call(server, "post", path, f"/api/admin/recover/{job_id}")
    assert (bad.status, bad.code) == (502, "runpod_bad_answer")
    runpod.status_mode = "error"
    down = call(server, "post", path, f"/api/admin/recover/{job_id}")
    assert (down.status, down.code, down.headers["retry-after"]) == (503, "runpod_unavailable", "5")
    runpod.status_mode = "answer"
    runpod.jobs.pop(rid)
    forgotten = call(server, "post", path, f"/api/admin/recover/{job_id}")
    assert (forgotten.status, forgotten.json()["status"], forgotten.json()["runpod_status"]) == (
        200,
        "failed",
        None,
    )
    runpod.run_mode = "refuse"
    never = call(server, "post", "/api/queue/create", "/api/queue/create", CREATE).json()["error"]["job_id"]
    unsubmitted = call(server, "post", path, f"/api/admin/recover/{never}")
    assert (unsubmitted.status, unsubmitted.code) == (409, "not_submitted")
    for target, status in [("/api/admin/recover/" + "f" * 32, 404), ("/api/admin/recover/x/y", 404)]:
        assert call(server, "post", path, target).status == status
    assert call(server, "post", path, f"/api/admin/recover/{job_id}", auth=False).status == 401
    assert call(server, "get", path, f"/api/admin/recover/{job_id}").status == 405


def test_cancel_answers_and_refuses_as_documented(server: LocalServer, runpod: ContractRunPod) -> None:
    path = "/api/cancel/{job_id}"
    job_id = create(server)["job_id"]
    for mode, status, code in [
        ("error", 503, "runpod_unavailable"),
        ("busy", 503, "runpod_unavailable"),
        ("refuse", 502, "runpod_refused"),
        ("running", 502, "runpod_not_cancelled"),
    ]:
        runpod.cancel_mode = mode
        reply = call(server, "post", path, f"/api/cancel/{job_id}")
        assert (reply.status, reply.code) == (status, code), mode
    runpod.cancel_mode = "answer"
    cancelled = call(server, "post", path, f"/api/cancel/{job_id}").json()
    assert (cancelled["cancelled"], cancelled["status"], cancelled["runpod_status"]) == (
        True,
        "cancelled",
        "CANCELLED",
    )
    again = call(server, "post", path, f"/api/cancel/{job_id}", {}).json()  # {} says nothing: taken as no body
    assert (again["cancelled"], again["reason"]) == (False, "already_ended")
    for body, raw, code in [({"reason": "oops"}, None, "invalid_body"), (None, b'{"reason": "oops", not json',
                                                                         "invalid_json")]:
        reply = call(server, "post", path, f"/api/cancel/{job_id}", body, raw=raw)
        assert (reply.status, reply.code) == (400, code), reply.body
    gone = create(server)["job_id"]
    runpod.jobs.pop(status_of(server, gone)["runpod_job_id"])
    reply = call(server, "post", path, f"/api/cancel/{gone}")
    assert (reply.status, reply.code) == (409, "unknown_runpod_job")
    assert call(server, "post", path, "/api/cancel/" + "f" * 32).code == "unknown_job"
    assert call(server, "post", path, f"/api/cancel/{job_id}", auth=False).status == 401
    assert call(server, "delete", path, f"/api/cancel/{job_id}").status == 405


def test_cancel_while_the_submission_is_in_flight_is_a_409_with_retry_after(
    server: LocalServer, runpod: ContractRunPod
) -> None:
    runpod.hold = True
    created: list[Reply] = []
    submitting = threading.Thread(
        target=lambda: created.append(
            send(server.port, "POST", "/api/queue/create", json.dumps(CREATE).encode(), AUTH)
        )
    )
    submitting.start()
    try:
        assert runpod.received.wait(20)
        job_id = runpod.runs[-1]["input"]["job_id"]
        reply = call(server, "post", "/api/cancel/{job_id}", f"/api/cancel/{job_id}")
        assert (reply.status, reply.code, reply.headers["retry-after"]) == (409, "submission_in_flight", "2")
    finally:
        runpod.release.set()
        submitting.join(30)
    check("post", "/api/queue/create", created[0])


def test_a_compressed_body_is_a_documented_415_on_every_route_that_reads_one(server: LocalServer) -> None:
    job_id = create(server)["job_id"]
    coded = {"Content-Encoding": "gzip"}
    sig = webhook_signature(WEBHOOK_SECRET, job_id)
    for path, target, body, auth in [
        ("/api/queue/create", "/api/queue/create", CREATE, True),
        ("/api/cancel/{job_id}", f"/api/cancel/{job_id}", {}, True),
        ("/api/admin/recover/{job_id}", f"/api/admin/recover/{job_id}", {"runpod_job_id": "r-1"}, True),
        ("/api/runpod/webhook", f"/api/runpod/webhook?job={job_id}&sig={sig}", {"id": "r", "status": "FAILED"}, False),
    ]:
        raw = gzip.compress(json.dumps(body).encode())
        reply = call(server, "post", path, target, raw=raw, headers=coded, auth=auth)
        assert (reply.status, reply.code, reply.headers["accept-encoding"]) == (
            415,
            "unsupported_content_encoding",
            "identity",
        ), reply.body
    assert status_of(server, job_id)["status"] == "queued"


def test_the_servers_own_refusals_are_documented_json(server: LocalServer) -> None:
    long_target = call(server, "get", "/api/status/{job_id}", "/api/status/" + "a" * 17_000)
    assert (long_target.status, long_target.code) == (414, "uri_too_long")
    big_head = check(
        "get",
        "/healthz",
        send(server.port, "GET", "/healthz", headers={f"X-Pad-{i}": "p" * 8000 for i in range(17)}),
    )
    assert (big_head.status, big_head.code) == (431, "headers_too_large")
    twice = check(
        "post",
        "/api/queue/create",
        send(
            server.port,
            "POST",
            "/api/queue/create",
            b"{}",
            AUTH,
            header_lines=[("Content-Length", "2"), ("Content-Length", "3")],
        ),
    )
    assert (twice.status, twice.code) == (400, "bad_request")


def test_inputs_answers_and_refuses_as_documented(server: LocalServer, troubled: LocalServer) -> None:
    png = PNG_HEADER + b"rest of the image"

    def upload(target: LocalServer, data: bytes, content_type: str | None = "image/png", auth: bool = True) -> Reply:
        headers = {"Content-Type": content_type} if content_type else {}
        return call(target, "post", "/api/inputs", "/api/inputs", raw=data, headers=headers, auth=auth)

    stored = upload(server, png)
    assert stored.status == 201 and stored.json()["key"].startswith("inputs/")
    assert upload(server, b"").status == 400
    assert upload(server, b"GIF89a" + png).status == 400
    assert upload(server, png, "text/plain").status == 415
    assert upload(server, png, None).status == 415
    assert upload(server, png, auth=False).status == 401
    declared_over = [("Content-Length", str(20 * 1024 * 1024 + 1)), ("Expect", "100-continue")]  # answered unsent
    over = send(server.port, "POST", "/api/inputs", None, {**AUTH, "Content-Type": "image/png"}, declared_over)
    assert check("post", "/api/inputs", over).status == 413
    assert call(server, "get", "/api/inputs", "/api/inputs").status == 405
    assert upload(troubled, png).status == 503


# A PNG's signature, its IHDR chunk (640 x 480, 8-bit RGB; its CRC left zero: the service checks no CRC) and an
# empty IDAT chunk. The service reads the chunks up to the image data (IDAT), never the pixels: a PNG that ends
# before its IDAT is refused as cut short.
PNG_HEADER = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x02\x80\x00\x00\x01\xe0\x08\x02\x00\x00\x00"
              b"\x00\x00\x00\x00" b"\x00\x00\x00\x00IDAT\x35\xaf\x06\x1e")


def test_every_operation_was_seen_succeed_and_refuse() -> None:
    # The tests above ran in this worker first (pytest-xdist --dist loadfile keeps a file in one worker).
    if not SEEN:
        pytest.skip("run with the rest of this file")
    for path, item in DOC["paths"].items():
        for verb in (v for v in item if v in METHODS):
            statuses = {status for v, p, status in SEEN if (v, p) == (verb, path)}
            assert any(s < 400 for s in statuses), (verb, path, statuses)
            # a HEAD's refusals are its GET's (the same statuses, no body): those are held above
            assert verb == "head" or any(s >= 400 for s in statuses), (verb, path, statuses)
