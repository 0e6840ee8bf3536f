"""The stored outcome a recovery reads, as the Cloudflare Worker gets it: the R2 adapter reads the object body, a
ReadableStream, only up to the outcome's 1 MiB cap (an isolate has 128 MB), and a stream R2 breaks off is the
store being unavailable (retry later), not a broken outcome. The core never sees the stream."""

from __future__ import annotations

import asyncio
import json
import types

import pytest

from service.cloudflare_entry import R2ResultStore
from service.ports import StoreUnavailable
from service.results import OutcomeUnusable, stored_outcome

JOB_ID = "a" * 32


class JsException(Exception):
    """A JS Error surfacing in Python (pyodide.ffi.JsException; outside Pyodide the entry catches Exception)."""


class _ReadableStream:
    """R2's object body in the Cloudflare Worker (R2 cannot run here): `getReader().read()` gives Uint8Arrays;
    with `breaks_after`, the read after that many bytes rejects, as when R2 drops the stream."""

    def __init__(self, body: bytes, chunk: int, breaks_after: int | None = None) -> None:
        self.chunks = [body[i:i + chunk] for i in range(0, len(body), chunk)]
        self.breaks_after = breaks_after
        self.pulled = 0
        self.cancelled = False

    def getReader(self) -> _ReadableStream:
        return self

    async def read(self) -> types.SimpleNamespace:
        if self.breaks_after is not None and self.pulled >= self.breaks_after:
            raise JsException("Network connection lost.")
        if self.cancelled or not self.chunks:
            return types.SimpleNamespace(done=True, value=None)
        chunk = self.chunks.pop(0)
        self.pulled += len(chunk)
        return types.SimpleNamespace(done=False, value=types.SimpleNamespace(to_bytes=lambda: chunk))

    async def cancel(self) -> None:
        self.cancelled = True


class _R2Binding:
    """The RESULTS binding: `get` resolves to an R2ObjectBody (its metadata and `body`), or null."""

    def __init__(self, objects: dict[str, _ReadableStream]) -> None:
        self.objects = objects

    async def get(self, key: str) -> types.SimpleNamespace | None:
        stream = self.objects.get(key)
        if stream is None:
            return None
        return types.SimpleNamespace(size=sum(map(len, stream.chunks)), etag="e", uploaded=None, body=stream,
                                     httpMetadata=types.SimpleNamespace(contentType="application/json"))


def _outcome_stream(body: bytes, breaks_after: int | None = None) -> _ReadableStream:
    return _ReadableStream(body, 65_536, breaks_after)


def test_the_cloudflare_workers_r2_stream_is_read_and_an_oversized_one_only_just_past_the_cap():
    image = {"key": f"results/{JOB_ID}/0.png", "content_type": "image/png", "bytes": 21}
    good = json.dumps({"runpod_job_id": "rp-1-u1", "output": {"images": [image], "pad": "x" * 100_000}}).encode()
    store = R2ResultStore(_R2Binding({f"results/{JOB_ID}/outcome.json": _outcome_stream(good)}))
    stored = asyncio.run(stored_outcome(store, JOB_ID))
    assert (stored.runpod_job_id, stored.output["images"]) == ("rp-1-u1", [image])

    huge = _outcome_stream(b"x" * 50_000_000)
    with pytest.raises(OutcomeUnusable, match="over 1048576 bytes"):
        asyncio.run(stored_outcome(R2ResultStore(_R2Binding({f"results/{JOB_ID}/outcome.json": huge})), JOB_ID))
    assert huge.cancelled and huge.pulled <= 1_048_576 + 65_536

    assert asyncio.run(stored_outcome(R2ResultStore(_R2Binding({})), JOB_ID)) is None


def test_an_r2_stream_that_breaks_off_mid_outcome_is_the_store_unavailable_not_an_unusable_outcome():
    broken = _outcome_stream(b'{"runpod_job_id": "rp-1-u1", "output": ' + b" " * 200_000 + b"{}}", breaks_after=65_536)
    store = R2ResultStore(_R2Binding({f"results/{JOB_ID}/outcome.json": broken}))
    with pytest.raises(StoreUnavailable, match="outcome.json broke off after 65536 bytes: Network connection lost"):
        asyncio.run(stored_outcome(store, JOB_ID))
