"""JSON the service reads from RunPod and from the result store is held to the webhook body's depth bound.

The Worker parses with Pyodide, whose parser has no depth bound of CPython's kind and overflows the JS stack a few
thousand levels down: a fatal error that kills the isolate (tests/service/test_review16_diff_json_depth.py). A
webhook body nested past `MAX_JSON_DEPTH` is refused before parsing; so now are an outcome a worker stored (read by
a recovery) and RunPod's answers, which reached `json.loads` unchecked: CPython took 200 levels, Pyodide dies at a
few thousand."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

import pytest

from service import results, runpod
from service.http import MAX_JSON_DEPTH
from service.ports import HttpReply

JOB = "0123456789abcdef0123456789abcdef"


def _nested(levels: int, inner: object = 1) -> object:
    value = inner
    for _ in range(levels):
        value = [value]
    return value


class _Store:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    async def read_at_most(self, key: str, limit: int) -> bytes | None:
        return self.raw


class _Transport:
    def __init__(self, status: int, body: bytes) -> None:
        self.reply = HttpReply(status, body)

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                      timeout_s: float) -> HttpReply:
        return self.reply


def _outcome(extra: object) -> bytes:
    image = {"key": f"results/{JOB}/0.png", "content_type": "image/png", "bytes": 8}
    return json.dumps({"runpod_job_id": "rp-1", "output": {"images": [image], "extra": extra}}).encode()


def test_a_stored_outcome_nested_past_the_bound_is_unusable_and_one_within_it_is_read() -> None:
    within = asyncio.run(results.stored_outcome(_Store(_outcome(_nested(MAX_JSON_DEPTH - 3))), JOB))
    assert within is not None and within.runpod_job_id == "rp-1"
    with pytest.raises(results.OutcomeUnusable, match="is not JSON"):
        asyncio.run(results.stored_outcome(_Store(_outcome(_nested(MAX_JSON_DEPTH + 1))), JOB))


def test_a_runpod_answer_nested_past_the_bound_is_refused_as_unavailable_naming_the_bound() -> None:
    deep = json.dumps({"id": "rp-1", "status": "COMPLETED", "output": _nested(MAX_JSON_DEPTH + 1)}).encode()
    gateway = runpod.HttpRunPodGateway(_Transport(200, deep), "http://127.0.0.1:9/v2/ep", "key-0123456789")
    with pytest.raises(runpod.RunPodUnavailable, match=f"nested over {MAX_JSON_DEPTH} levels"):
        asyncio.run(gateway.status("rp-1"))
    fine = json.dumps({"id": "rp-1", "status": "COMPLETED", "output": _nested(5)}).encode()
    gateway = runpod.HttpRunPodGateway(_Transport(200, fine), "http://127.0.0.1:9/v2/ep", "key-0123456789")
    assert asyncio.run(gateway.status("rp-1"))["status"] == "COMPLETED"


def test_a_refusal_nested_past_the_bound_is_quoted_as_text_not_parsed() -> None:
    deep = b'{"detail": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    gateway = runpod.HttpRunPodGateway(_Transport(400, deep), "http://127.0.0.1:9/v2/ep", "key-0123456789")
    with pytest.raises(runpod.RunPodRefused) as refused:
        asyncio.run(gateway.run({"input": {}}))
    assert str(refused.value).count("[") > 10  # the body's text, cut, not a parse of it
