"""The stored outcome a recovery reads, as the Cloudflare Worker gets it: R2's object body is a ReadableStream,
read only up to the outcome's 1 MiB cap (an isolate has 128 MB)."""

from __future__ import annotations

import asyncio
import json
import types

from service.ports import ObjectMeta, StoredObject
from service.results import OutcomeUnusable, stored_outcome


class _ReadableStream:
    """R2's object body in the Cloudflare Worker (R2 cannot run here): `getReader().read()` gives Uint8Arrays."""

    def __init__(self, body: bytes, chunk: int) -> None:
        self.chunks = [body[i:i + chunk] for i in range(0, len(body), chunk)]
        self.pulled = 0
        self.cancelled = False

    def getReader(self) -> _ReadableStream:
        return self

    async def read(self) -> types.SimpleNamespace:
        if self.cancelled or not self.chunks:
            return types.SimpleNamespace(done=True, value=None)
        chunk = self.chunks.pop(0)
        self.pulled += len(chunk)
        return types.SimpleNamespace(done=False, value=types.SimpleNamespace(to_bytes=lambda: chunk))

    async def cancel(self) -> None:
        self.cancelled = True


class _R2Store:
    def __init__(self, body: bytes) -> None:
        self.stream = _ReadableStream(body, 65_536)

    async def get(self, key: str) -> StoredObject:
        return StoredObject(ObjectMeta(key, 0, "application/json"), self.stream)


def test_the_cloudflare_workers_r2_stream_is_read_and_an_oversized_one_only_just_past_the_cap():
    job_id = "a" * 32
    image = {"key": f"results/{job_id}/0.png", "content_type": "image/png", "bytes": 21}
    good = json.dumps({"runpod_job_id": "rp-1-u1", "output": {"images": [image], "pad": "x" * 100_000}}).encode()
    stored = asyncio.run(stored_outcome(_R2Store(good), job_id))
    assert (stored.runpod_job_id, stored.output["images"]) == ("rp-1-u1", [image])

    huge = _R2Store(b"x" * 50_000_000)
    try:
        asyncio.run(stored_outcome(huge, job_id))
    except OutcomeUnusable as exc:
        assert "over 1048576 bytes" in str(exc)
    else:
        raise AssertionError("a 50 MB outcome was applied")
    assert huge.stream.cancelled and huge.stream.pulled <= 1_048_576 + 65_536
