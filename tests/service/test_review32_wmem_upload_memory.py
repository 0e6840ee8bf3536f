"""What an image upload (POST /api/inputs) costs the Worker's memory. An isolate has 128 MB and serves concurrent
requests; an upload takes up to 20 MiB. The entry reads a body of known length into one buffer (Python holds it
once, not its chunks and their join as well), and reads at most 2 x max_input_bytes of uploads at once: an upload
past that is answered 503 `uploads_busy` with Retry-After without its body being read, and the budget is given back
however an upload ends. Driven through `Default.fetch` over the stand-ins of the Workers runtime
(tests/service/test_service_cloudflare_entry.py)."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import tracemalloc
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_testkit import API_TOKEN
from test_review32_inputsvc_uploads import WritableR2, image_bytes, png_claiming
from test_service_cloudflare_entry import Ctx, Fetch, JsException, JsRequest, _entry, make_env

LIMIT = 100_000  # max_input_bytes of the budget tests: the isolate reads 200,000 bytes of uploads at once
MIB20 = 20 * 1024 * 1024
CHUNK = 64 * 1024


class ClientBody:
    """A request body's ReadableStream as Pyodide reads it: chunks of CHUNK bytes, each `to_bytes()` a fresh copy
    (Pyodide copies a Uint8Array out of JS memory), each read a turn of the event loop. With `hold`, the client
    sends its first chunk and then nothing until `hold` is set; `lost`: its connection is lost there instead."""

    def __init__(self, data: bytes, hold: asyncio.Event | None = None, lost: bool = False) -> None:
        self.view, self.hold, self.lost = memoryview(data), hold, lost
        self.pulled, self.cancelled, self.waiting = 0, False, False

    def getReader(self) -> ClientBody:
        return self

    async def read(self) -> Any:
        await asyncio.sleep(0)
        if self.hold is not None and self.pulled and not self.hold.is_set():
            self.waiting = True
            await self.hold.wait()
            if self.lost:
                raise JsException("TypeError: Network connection lost.")
        if self.cancelled or self.pulled >= len(self.view):
            return types.SimpleNamespace(done=True, value=None)
        piece = self.view[self.pulled:self.pulled + CHUNK]
        self.pulled += len(piece)
        return types.SimpleNamespace(done=False, value=types.SimpleNamespace(to_bytes=lambda: bytes(piece)))

    async def cancel(self) -> None:
        self.cancelled = True


class JsSideR2(WritableR2):
    """R2's put as far as Python's memory goes: the runtime hands R2 a JS copy of the body, so this one writes
    and checks the buffer it is handed without copying it into a Python bytes, and answers a bare object."""

    async def put(self, key: str, value: Any, options: dict[str, Any] | None = None) -> Any:  # type: ignore[override]
        options = options or {}
        self.puts.append((key, options))
        if self.failing:
            raise JsException(self.failing)
        assert hashlib.sha256(value).hexdigest() == options["sha256"]
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(value)
        self.types[key] = options["httpMetadata"]["contentType"]
        return types.SimpleNamespace(key=key, size=len(value))


class Isolate:
    """One Worker isolate: its Default over the stand-ins, one event loop for all its requests."""

    def __init__(self, entry: Any, env: Any, capsys: Any, log_lines: list[str]) -> None:
        self.entry, self.env, self.capsys, self.log_lines = entry, env, capsys, log_lines
        self.worker = entry.Default(Ctx(), env)
        self.lines: list[dict[str, Any]] = []

    def fetch(self, request: Any) -> asyncio.Task:
        return asyncio.ensure_future(self.worker.fetch(request))

    def stored(self) -> list[bytes]:
        inputs = self.env.RESULTS.root / "inputs"
        return sorted(p.read_bytes() for p in inputs.iterdir()) if inputs.is_dir() else []

    def read_log(self) -> list[dict[str, Any]]:
        out = [line for line in self.capsys.readouterr().out.splitlines() if line.startswith("{")]
        self.log_lines.extend(out)
        self.lines.extend(json.loads(line) for line in out)
        return self.lines


def isolate_with(tmp_path: Path, capsys: Any, log_lines: list[str], **env_overrides: str) -> Iterator[Isolate]:
    monkeypatch = pytest.MonkeyPatch()
    entries = _entry(monkeypatch, with_jsnull=True)
    entry = next(entries)
    env = make_env(tmp_path / "cf", "http://127.0.0.1:9/v2/none", **env_overrides)
    env.RESULTS = JsSideR2(tmp_path / "cf" / "r2")
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    try:
        yield Isolate(entry, env, capsys, log_lines)
    finally:
        env.DB.conn.close()
        next(entries, None)


@pytest.fixture
def isolate(tmp_path: Path, capsys: Any, log_lines: list[str]) -> Iterator[Isolate]:
    yield from isolate_with(tmp_path, capsys, log_lines, MAX_INPUT_BYTES=str(LIMIT))


def upload(body: ClientBody, declared: int | None, token: str = API_TOKEN,
           content_type: str = "image/png") -> JsRequest:
    """POST /api/inputs with `body`; `declared`: its Content-Length, None for a chunked upload (no length)."""
    headers = {"authorization": f"Bearer {token}", "content-type": content_type}
    if declared is not None:
        headers["content-length"] = str(declared)
    request = JsRequest("POST", "https://api.example/api/inputs", iter(()), headers)
    request.body = body
    return request


def full_image(size: int = LIMIT, seed: int = 0) -> bytes:
    """An upload of exactly `size` bytes the service takes: a PNG header, then filler."""
    head = png_claiming(64, 64 + seed)
    return head + b"\0" * (size - len(head))


def answer(reply: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = json.loads(reply.body) if reply.body else {}
    return reply.status, body, {k.lower(): v for k, v in reply.headers.items()}


async def until_waiting(*bodies: ClientBody) -> None:
    """Until each client has sent its first chunk and waits (its upload is being read)."""
    for _ in range(1000):
        if all(body.waiting for body in bodies):
            return
        await asyncio.sleep(0)
    raise AssertionError("an upload's body was never read")


async def refused_busy(isolate: Isolate) -> None:
    """An upload now is answered 503 `uploads_busy` with Retry-After and its body is not read: the budget is full.
    Not `store_unavailable`: R2 is fine, and a client matching codes would blame it."""
    probe = ClientBody(image_bytes("image/png"))
    status, body, headers = answer(await isolate.fetch(upload(probe, len(probe.view))))
    assert (status, body.get("error", {}).get("code")) == (503, "uploads_busy"), body
    assert headers["retry-after"] == "5" and "Retry-After" in body["error"]["message"]
    assert "\n" not in body["error"]["message"] and "Traceback" not in body["error"]["message"]
    assert probe.pulled == 0, "the refused upload's body was read"


# ------------------------------------------------------------------ memory of one upload


@pytest.mark.parametrize("with_length", [True, False], ids=["content_length", "chunked"])
def test_a_20_mib_upload_is_held_once_in_python_not_as_its_chunks_and_their_join(tmp_path, capsys, log_lines,
                                                                               with_length):
    """Pyodide's heap never shrinks: the peak of one upload stays the isolate's. Before, the chunks and their
    join were alive together: twice the body. A body of known length is read into a buffer of that length; a
    chunked one into a buffer grown as it comes (an eighth over, at most)."""
    for isolate in isolate_with(tmp_path, capsys, log_lines):  # max_input_bytes: the default 20 MiB
        data = full_image(MIB20)
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(isolate.worker.fetch(upload(ClientBody(image_bytes("image/png")), None)))  # warm
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                request = upload(ClientBody(data), len(data) if with_length else None)
                reply = loop.run_until_complete(isolate.worker.fetch(request))
                peak = tracemalloc.get_traced_memory()[1] - before
            finally:
                tracemalloc.stop()
        finally:
            loop.close()
        status, body, _ = answer(reply)
        assert status == 201, body
        assert body["bytes"] == len(data) and body["sha256"] == hashlib.sha256(data).hexdigest()
        assert (isolate.env.RESULTS.root / body["key"]).read_bytes() == data
        size = len(data)
        assert peak < 1.3 * size, f"Python held {peak / size:.2f} copies of the body at its peak"
        isolate.read_log()


# ------------------------------------------------------------------ the isolate's upload budget


def test_uploads_past_the_isolates_budget_are_refused_503_unread_and_those_within_it_are_stored(isolate):
    async def scenario() -> None:
        go = asyncio.Event()
        declared = ClientBody(full_image(seed=1), go)  # takes its Content-Length, 100,000 bytes
        chunked = ClientBody(full_image(seed=2), go)  # no length: takes max_input_bytes, 100,000 bytes
        held = [isolate.fetch(upload(declared, LIMIT)), isolate.fetch(upload(chunked, None))]
        await until_waiting(declared, chunked)

        await refused_busy(isolate)
        # Only an upload the bearer token allows counts: others are answered as ever
        anonymous = ClientBody(image_bytes("image/png"))
        assert answer(await isolate.fetch(upload(anonymous, len(anonymous.view), token="nope")))[0] == 401
        over = ClientBody(full_image(LIMIT + 1))  # declared over the limit: 413, never read, takes nothing
        status, body, _ = answer(await isolate.fetch(upload(over, LIMIT + 1)))
        assert (status, body["error"]["code"], over.pulled) == (413, "body_too_large", 0)
        health = await isolate.worker.fetch(JsRequest("GET", "https://api.example/healthz"))
        assert health.status == 200

        go.set()
        assert [answer(await task)[0] for task in held] == [201, 201]
        assert isolate.stored() == sorted([full_image(seed=1), full_image(seed=2)])
        # Both gave their bytes back: two uploads of max_input_bytes are read at once again
        again = [ClientBody(full_image(seed=3)), ClientBody(full_image(seed=4))]
        assert [answer(r)[0] for r in await asyncio.gather(*(isolate.fetch(upload(b, LIMIT)) for b in again))] \
            == [201, 201]

    asyncio.run(scenario())
    (busy,) = [line for line in isolate.read_log() if line.get("reason") == "uploads_busy"]
    assert busy["event"] == "input.refused"
    assert (busy["level"], busy["reason"], busy["http"]["status"]) == ("warning", "uploads_busy", 503)
    assert busy["data"]["budget_bytes"] == 2 * LIMIT and busy["data"]["held_bytes"] == 2 * LIMIT


def _store_fails(isolate: Isolate) -> None:
    isolate.env.RESULTS.failing = "put: We encountered an internal error. Please try again. (10001)"


# outcome -> (the upload's bytes, its Content-Length, what to do before letting its client go on, its answer)
OUTCOMES: dict[str, tuple[bytes, int, Any, tuple[int, str] | None]] = {
    "stored": (full_image(seed=5), LIMIT, None, (201, "")),
    "refused_not_an_image": (b"GIF89a" + b"\0" * (LIMIT - 6), LIMIT, None, (400, "invalid_image")),
    "store_failed": (full_image(seed=5), LIMIT, _store_fails, (503, "store_unavailable")),
    "body_past_its_content_length": (full_image(LIMIT + 1, seed=5), LIMIT, None, (400, "body_unreadable")),
    "client_lost_mid_body": (full_image(seed=5), LIMIT, "lost", (400, "body_unreadable")),
    "request_cancelled_mid_body": (full_image(seed=5), LIMIT, "cancel", None),
}


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_an_upload_gives_its_budget_back_however_it_ends(isolate, outcome):
    data, declared, before_go, expected = OUTCOMES[outcome]

    async def scenario() -> None:
        other_go, go = asyncio.Event(), asyncio.Event()
        other = ClientBody(full_image(seed=6), other_go)
        body = ClientBody(data, go, lost=before_go == "lost")
        held = isolate.fetch(upload(other, LIMIT))
        ending = isolate.fetch(upload(body, declared))
        await until_waiting(other, body)
        await refused_busy(isolate)  # the two hold the whole budget

        if before_go == "cancel":  # the runtime cancels the request's work: its client went away
            ending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await ending
        else:
            if callable(before_go):
                before_go(isolate)
            go.set()
            status, reply, _ = answer(await ending)
            assert status == expected[0], reply
            assert status == 201 or reply["error"]["code"] == expected[1]
        isolate.env.RESULTS.failing = None

        # Its bytes are back while the other upload still holds its own: one more of max_input_bytes is read
        after = ClientBody(full_image(seed=7))
        assert answer(await isolate.fetch(upload(after, LIMIT)))[0] == 201
        other_go.set()
        assert answer(await held)[0] == 201

    asyncio.run(scenario())
    kept = [full_image(seed=6), full_image(seed=7)] + ([data] if outcome == "stored" else [])
    assert isolate.stored() == sorted(kept)
    isolate.read_log()


# ------------------------------------------------------------------ a body that is not its Content-Length


@pytest.mark.parametrize("declared_off", [-100, 100])
def test_a_body_longer_or_shorter_than_its_content_length_is_refused_400_and_not_stored(isolate, declared_off):
    """The isolate reads a body into a buffer of its Content-Length: one that runs past it or ends short of it
    is not the body the client meant to send."""
    data = image_bytes("image/png", seed=8)
    reply = asyncio.run(isolate.worker.fetch(upload(ClientBody(data), len(data) + declared_off)))
    status, body, _ = answer(reply)
    assert (status, body["error"]["code"]) == (400, "body_unreadable"), body
    assert "Content-Length" in body["error"]["message"] and "\n" not in body["error"]["message"]
    assert isolate.stored() == []
    assert [line["event"] for line in isolate.read_log()] == ["http.body_unreadable"]
