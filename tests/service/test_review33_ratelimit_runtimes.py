"""The API's rate limits on both runtimes: the local server over HTTP on loopback (its limits counted in process) and
the Cloudflare Worker's entry (`Default.fetch`) over the stand-ins of its bindings, the Workers Rate Limiting
bindings among them (`await env.RATE_LIMIT_CREATE.limit({key})` answers `{success}`, per key, as Cloudflare's
binding and miniflare's stand-in of it count). An upload over its limit is answered 429 before any of its body is
read; a Worker deployed before the bindings serves as it did, and says so once."""

from __future__ import annotations

import json
import socket
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_testkit import API_TOKEN, edge_in_thread
from test_review32_inputsvc_uploads import (
    AUTH,
    SMALL_LIMIT,
    CloudRuntime,
    LocalRuntime,
    WritableR2,
    image_bytes,
    upload,
)
from test_review32_wmem_upload_memory import ClientBody, full_image
from test_review32_wmem_upload_memory import upload as client_upload
from test_service_cloudflare_entry import Fetch, JsException, _entry, make_env

CREATES, UPLOADS = 2, 2
START = 1_800_000_000.0


class RateLimitBinding:
    """A Workers Rate Limiting binding (`type: ratelimit`, `simple: {limit, period: 60}`) with its call shape:
    `await limit({"key": k})` counts one request under k and answers an object whose `success` says whether k is
    within `per_minute` this period. Its options are an object holding `key` (a string) and nothing else; `reset`
    is the next period. `failing`: it rejects instead, as a binding the runtime cannot reach would."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.counts: dict[str, int] = {}
        self.calls: list[Any] = []
        self.failing: str | None = None

    async def limit(self, options: Any) -> Any:
        self.calls.append(options)
        if self.failing:
            raise JsException(self.failing)
        if not isinstance(options, dict) or set(options) != {"key"} or not isinstance(options["key"], str):
            raise JsException(f"Error: invalid rate limit options: {options!r}")
        taken = self.counts.get(options["key"], 0)
        if taken >= self.per_minute:
            return types.SimpleNamespace(success=False)
        self.counts[options["key"]] = taken + 1
        return types.SimpleNamespace(success=True)

    def reset(self) -> None:
        self.counts.clear()


def _cloud(request: pytest.FixtureRequest, tmp_path: Path, log_lines: list[str], bound: bool = True,
           **env: str) -> Iterator[CloudRuntime]:
    fake, capsys = request.getfixturevalue("fake_runpod"), request.getfixturevalue("capsys")
    monkeypatch = pytest.MonkeyPatch()
    entries = _entry(monkeypatch, with_jsnull=True)
    entry = next(entries)
    worker_env = make_env(tmp_path / "cf", fake.base, **{"MAX_INPUT_BYTES": str(SMALL_LIMIT),
                                                         "CREATE_RATE_LIMIT_PER_MINUTE": str(CREATES),
                                                         "INPUTS_RATE_LIMIT_PER_MINUTE": str(UPLOADS), **env})
    worker_env.RESULTS = WritableR2(tmp_path / "cf" / "r2")
    if bound:
        worker_env.RATE_LIMIT_CREATE, worker_env.RATE_LIMIT_INPUTS = RateLimitBinding(CREATES), RateLimitBinding(UPLOADS)
    fetch = Fetch()
    entry.Default._app = entry.build_app(worker_env, fetch=fetch)
    running = CloudRuntime(entry, worker_env, fetch, capsys, log_lines)
    try:
        yield running
    finally:
        running.close()
        worker_env.DB.conn.close()
        next(entries, None)


@pytest.fixture(params=["local", "cloud"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path, log_lines: list[str]) -> Iterator[Any]:
    if request.param == "cloud":
        yield from _cloud(request, tmp_path, log_lines)
        return
    moto_endpoint, fake, s3 = (request.getfixturevalue(n) for n in ("moto_endpoint", "fake_runpod", "s3"))
    with edge_in_thread(tmp_path, moto_endpoint, fake.base, log_lines, max_input_bytes=SMALL_LIMIT,
                        create_rate_limit_per_minute=CREATES, inputs_rate_limit_per_minute=UPLOADS) as server:
        for limit in server.service.app.rate_limits.values():
            limit.counter.clock = lambda: START  # one minute throughout: a test never straddles two
        running = LocalRuntime(server, s3, fake, log_lines)
        yield running
        running.close()


@pytest.fixture
def cloud(request: pytest.FixtureRequest, tmp_path: Path, log_lines: list[str]) -> Iterator[CloudRuntime]:
    yield from _cloud(request, tmp_path, log_lines)


def create(runtime: Any, prompt: str = "a lighthouse") -> Any:
    body = json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": prompt}}).encode()
    return runtime.call("POST", "/api/queue/create", body, {**AUTH, "content-type": "application/json"})


def _jobs(runtime: Any) -> int:
    if isinstance(runtime, CloudRuntime):
        return runtime.env.DB.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    return runtime.server.service.db.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


def _refused(answer: Any, route: str, limit: int) -> None:
    assert answer.status == 429, answer.body
    assert answer.error["code"] == "rate_limited" and answer.headers["retry-after"] == "60"
    assert route in answer.error["message"] and f"{limit} requests a minute" in answer.error["message"]


def test_a_create_past_the_limit_is_429_and_reaches_no_runpod_nor_the_database(runtime):
    assert [create(runtime, f"p{n}").status for n in range(CREATES)] == [202] * CREATES
    _refused(create(runtime, "one more"), "POST /api/queue/create", CREATES)
    assert len(runtime.runs()) == CREATES and _jobs(runtime) == CREATES
    (line,) = [line for line in runtime.lines() if line["event"] == "job.rate_limited"]
    assert line["http"]["status"] == 429 and line["reason"] == "rate_limited"


def test_an_upload_past_the_limit_is_429_stores_nothing_and_an_anonymous_one_uses_no_budget(runtime):
    for token in (None, "wrong-token-0123456789abcdef"):
        assert upload(runtime, image_bytes("image/png"), "image/png", token=token).status == 401
    taken = [upload(runtime, image_bytes("image/png", seed=n), "image/png") for n in range(UPLOADS)]
    assert [answer.status for answer in taken] == [201] * UPLOADS
    _refused(upload(runtime, image_bytes("image/png", seed=7), "image/png"), "POST /api/inputs", UPLOADS)
    assert runtime.stored_inputs() == {answer.json["key"] for answer in taken}
    refusals = [line for line in runtime.lines() if line["event"] == "input.refused"]
    assert [(line["reason"], line["http"]["status"]) for line in refusals] == [("rate_limited", 429)]


def _local_upload_head(server_url: str, length: int) -> socket.socket:
    host, port = server_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(b"POST /api/inputs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + API_TOKEN.encode()
                 + b"\r\ncontent-type: image/png\r\ncontent-length: %d\r\n\r\n" % length)
    return sock


def test_an_upload_over_the_limit_is_answered_before_its_body_is_read(runtime):
    """Nothing of an upload refused for its rate is read: on the Worker not a byte of its stream is pulled (nor any
    of the isolate's upload budget taken); locally the 429 comes while the client has sent only its head, and the
    connection is closed after it."""
    for n in range(UPLOADS):
        assert upload(runtime, image_bytes("image/png", seed=n), "image/png").status == 201
    data = full_image(SMALL_LIMIT)
    if isinstance(runtime, CloudRuntime):
        body = ClientBody(data)
        reply = runtime.loop.run_until_complete(runtime.worker.fetch(client_upload(body, len(data))))
        assert reply.status == 429 and json.loads(reply.body)["error"]["code"] == "rate_limited"
        assert body.pulled == 0, "the refused upload's body was read"
        assert runtime.entry.UPLOADS.held == 0
        return
    sock = _local_upload_head(runtime.server.url, len(data))
    try:
        answer = sock.recv(65536)  # before any of the body is sent: a server reading it first would wait here
    finally:
        sock.close()
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 429"), answer[:300]
    assert b"connection: close" in head and b"retry-after: 60" in head
    assert len(runtime.stored_inputs()) == UPLOADS


def test_each_worker_request_asks_its_routes_binding_with_a_plain_key_of_route_and_token(cloud):
    """The binding is asked `limit({key})`: the route and which token, never the token's value."""
    create(cloud)
    upload(cloud, image_bytes("image/png"), "image/png")
    cloud.call("GET", "/api/workflows", b"", AUTH)  # no limited route: no binding asked
    assert cloud.env.RATE_LIMIT_CREATE.calls == [{"key": "create:current"}]
    assert cloud.env.RATE_LIMIT_INPUTS.calls == [{"key": "inputs:current"}]


def test_the_worker_counts_again_in_the_bindings_next_period(cloud):
    assert [create(cloud).status for _ in range(CREATES + 1)] == [202] * CREATES + [429]
    cloud.env.RATE_LIMIT_CREATE.reset()
    assert create(cloud).status == 202


def test_a_binding_that_fails_lets_the_worker_serve_and_the_line_says_so(cloud):
    cloud.env.RATE_LIMIT_INPUTS.failing = "Error: internal error in rate limiter"
    assert [upload(cloud, image_bytes("image/png", seed=n), "image/png").status for n in range(UPLOADS + 2)] == \
        [201] * (UPLOADS + 2)
    stored = [line for line in cloud.lines() if line["event"] == "input.stored"]
    assert stored[0]["data"]["rate_limit_error"]["message"] == "Error: internal error in rate limiter"


def test_a_worker_without_the_rate_limit_bindings_serves_as_before_and_says_so_once(request, tmp_path, log_lines):
    """An older deploy (no `ratelimit` bindings yet) keeps serving, with no limit, and its first request logs one
    warning naming what is missing and what to do."""
    for cloud in _cloud(request, tmp_path, log_lines, bound=False):
        assert [create(cloud, f"p{n}").status for n in range(CREATES + 2)] == [202] * (CREATES + 2)
        assert [upload(cloud, image_bytes("image/png", seed=n), "image/png").status
                for n in range(UPLOADS + 2)] == [201] * (UPLOADS + 2)
        (line,) = [line for line in cloud.lines() if line["event"] == "service.rate_limit_unbound"]
        assert line["level"] == "warning" and line["data"] == {"bindings": ["RATE_LIMIT_CREATE", "RATE_LIMIT_INPUTS"]}
        assert "pulumi up" in line["message"]


def test_a_worker_told_no_limit_asks_no_binding_and_warns_of_none(request, tmp_path, log_lines):
    """A route whose limit setting is absent has none, bound or not: the settings and the bindings come together."""
    for cloud in _cloud(request, tmp_path, log_lines, CREATE_RATE_LIMIT_PER_MINUTE=""):
        assert [create(cloud).status for _ in range(CREATES + 1)] == [202] * (CREATES + 1)
        assert cloud.env.RATE_LIMIT_CREATE.calls == []
        assert upload(cloud, image_bytes("image/png"), "image/png").status == 201
        assert cloud.env.RATE_LIMIT_INPUTS.calls == [{"key": "inputs:current"}]
        assert not [line for line in cloud.lines() if line["event"] == "service.rate_limit_unbound"]
