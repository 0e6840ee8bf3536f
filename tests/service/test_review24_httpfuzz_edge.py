"""The generative sweep of test_review24_httpfuzz_core.py, smaller, through the real local server (uvicorn with
service/local_server.py's EdgeProtocol, the ASGI shell, SQLite): each request goes out as bytes on a socket, so
what the edge refuses before the App sees it is in the path. The same properties hold: an answer within the bound
(no hang), never a 5xx, a JSON error whose code openapi.json documents for the operation (the edge's codes are
documented for every operation), nothing written for a refused request, and every log line on the schema."""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_testkit import API_TOKEN, BUCKET, ROOT, WEBHOOK_SECRET, check_log_lines, make_config
from test_review24_httpfuzz_core import (
    ANSWER_BOUND_S,
    BODY_ROUTES,
    DOC,
    NO_ROUTE,
    PLACES,
    WORLD,
    _code_enums,
    _deref,
    body_requests,
    check_answer,
    damaged_requests,
    requests,
)

from service import local_server
from service.http import Request
from service.signing import webhook_signature

# What the edge answers before any route is chosen, documented for every operation as shared responses.
EDGE = {int(status): {code for enum in _code_enums(_deref(response).get("content", {}).get("application/json", {})
                                                   .get("schema")) for code in enum}
        for status, response in DOC["paths"]["/healthz"]["get"]["responses"].items()
        if "$ref" in response and status != "500"}
# Written as they go on the wire, these would change the request's framing (a CR or LF ends a line, a space ends
# the target, '#' starts a fragment the client never sends): a client encodes them, and so does the sweep.
_FRAMING = {"\r": "%0D", "\n": "%0A", " ": "%20", "#": "%23"}


def _target(request: Request) -> str:
    path = "".join(_FRAMING.get(c, c) for c in request.path)
    query = "".join(_FRAMING.get(c, c) for c in request.query_string)
    return path + ("?" + query if query else "")


def send(port: int, request: Request, form: str = "origin") -> tuple[int, bytes, dict[str, str], str]:
    """The request as bytes on a new connection, its target in `form` (RFC 9112 3.2); the answer (status, body,
    headers) and the path the ASGI shell reads from it."""
    target = _target(request)
    seen = target.split("?", 1)[0]
    if form == "absolute":  # as a proxy sends it: the server reads the path from it
        target = f"http://127.0.0.1:{port}{target}"
    elif form == "asterisk":
        target = seen = "*"
    elif form == "no slash":
        target, seen = target.lstrip("/"), "!"  # no path at all: the parser refuses it, or no route matches
    head = f"{request.method} {target} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
    for name, value in request.headers.items():
        if name != "content-length":  # the sweep's bodies are framed right: a mismatch is the edge tests' topic
            head += f"{name}: {value.replace(chr(13), '').replace(chr(10), '')}\r\n"
    body = request.body if request.method not in ("GET", "HEAD") else b""
    head += f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_BOUND_S) as sock:
        sock.sendall(head.encode("utf-8") + body)
        reply = http.client.HTTPResponse(sock, method=request.method)
        reply.begin()
        payload = reply.read()
    return reply.status, payload, {k.lower(): v for k, v in reply.getheaders()}, seen.encode().decode("latin-1")


def _call(port: int, method: str, target: str, body: Any = None, auth: bool = True) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_BOUND_S)
    try:
        conn.request(method, target, body=json.dumps(body) if body is not None else None,
                     headers={"authorization": f"Bearer {API_TOKEN}"} if auth else {})
        reply = conn.getresponse()
        return reply.status, json.loads(reply.read() or b"null")
    finally:
        conn.close()


class Edge:
    def __init__(self, server: local_server.RunningServer, db_path: Path) -> None:
        self.server = server
        self.db_path = db_path

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"{self.db_path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            return conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        finally:
            conn.close()

    def written(self) -> dict[str, Any]:
        return {t: self.rows(t) for t in ("jobs", "webhook_deliveries", "job_metrics", "idempotency_keys")}

    def seed(self, s3: Any) -> None:
        """As the core sweep's seed, over HTTP: a job queued at RunPod, one completed with a stored result, one
        failed."""
        port = self.server.port
        ids = []
        for prompt in ("queued", "done", "failed"):
            status, body = _call(port, "POST", "/api/queue/create",
                                 {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": prompt}})
            assert status == 202, body
            ids.append(body["job_id"])
        queued, done, failed = ids
        rid = {row[0]: row[1] for row in sqlite3.connect(self.db_path).execute("SELECT id, runpod_job_id FROM jobs")}
        key, data = f"results/{done}/0.png", b"\x89PNG fake image bytes"
        s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="image/png")
        image = {"key": key, "content_type": "image/png", "bytes": len(data), "sha256": "0" * 64, "width": 8,
                 "height": 8}
        for job, outcome in ((done, {"status": "COMPLETED", "output": {"images": [image]}}),
                             (failed, {"status": "FAILED", "error": "oom"})):
            query = f"job={job}&sig={webhook_signature(WEBHOOK_SECRET, job)}"
            status, body = _call(port, "POST", f"/api/runpod/webhook?{query}", {"id": rid[job], **outcome},
                                 auth=False)
            assert status == 200 and body["applied"], body
        WORLD.update(jobs=ids, result_key=key, result_bytes=len(data), runpod_id=rid[queued], runpod_ids=rid,
                     harness=self)


@pytest.fixture
def edge(tmp_path, moto_endpoint, fake_runpod, log_lines, s3) -> Iterator[Edge]:
    db_path = tmp_path / "db.sqlite"
    config = make_config(runpod_endpoint_base=fake_runpod.base, db_path=str(db_path), s3_endpoint_url=moto_endpoint,
                         apply_migrations_from=str(ROOT / "migrations"))
    server = local_server.start_in_thread(config, log_sink=log_lines.sink)
    wrapped = Edge(server, db_path)
    wrapped.seed(s3)
    yield wrapped
    server.stop()


def sweep(edge: Edge, log_lines: list[str], request: Request, form: str) -> None:
    before, lines = edge.written(), len(log_lines)
    status, body, headers, seen = send(edge.server.port, request, form)
    # A path no route matches: what the App answers, or what the edge refused before the App saw it.
    check_answer(request.method, seen, status, body, headers,
                 no_route={**EDGE, **{s: NO_ROUTE[s] | EDGE.get(s, set()) for s in NO_ROUTE}})
    if status >= 400:
        assert edge.written() == before, f"a refused request wrote: {request}"
    new = log_lines[lines:]
    check_log_lines(new)
    assert len(new) == 1, f"{len(new)} log lines for one request answered {status}: {new}"


_EDGE_SWEEP = settings(max_examples=14, deadline=None, derandomize=True, database=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                              HealthCheck.data_too_large])


@pytest.mark.parametrize("place", PLACES + BODY_ROUTES)
@_EDGE_SWEEP
@given(data=st.data())
def test_any_request_sent_through_the_real_server_gets_a_documented_json_answer(edge, log_lines, place, data):
    form = data.draw(st.sampled_from(["origin"] * 7 + ["absolute", "asterisk", "no slash"]))
    request = data.draw(body_requests(place) if place in BODY_ROUTES else requests(place))
    sweep(edge, log_lines, request, form)


@pytest.mark.parametrize("route", BODY_ROUTES)
def test_each_damaged_body_sent_through_the_real_server_gets_a_documented_json_answer(edge, log_lines, route):
    for request in damaged_requests(route):
        sweep(edge, log_lines, request, "origin")
