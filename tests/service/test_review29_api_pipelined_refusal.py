"""A request the local server's edge refuses (not HTTP/1.1, a target over 16 KB, a header block over 128 KB),
pipelined behind a create still being answered: the refusal went out at once, in the create's place, and the
connection was closed, so the create's 202 was lost. A pipelining client matches answers to requests in order:
it read the 400 (or 414, 431) as its create's, while the job was made and sent to RunPod. The refusal now waits
for the answers owed before it. Raw bytes over a loopback socket to the in-process server (uvicorn with
EdgeProtocol)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from raw_http import exchange
from service_testkit import count_jobs, create_head, edge_in_thread

from service.local_server import RunningServer

CREATE_BODY = b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}'


@pytest.fixture
def edge(tmp_path, moto_endpoint, fake_runpod, log_lines) -> Iterator[RunningServer]:
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines) as server:
        yield server


def _answers(server: RunningServer, raw: bytes) -> list[tuple[int, dict]]:
    """Every answer to `raw` (its status and JSON body), in order, read until the server closes the connection."""
    return [(status, json.loads(body)) for status, _, body in exchange(server.port, raw)]


@pytest.mark.parametrize(("refused", "status", "code"), [
    (b"HELLO\r\n\r\n", 400, "bad_request"),
    (b"GET /" + b"a" * 17_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n", 414, "uri_too_long"),
    (b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad: " + b"a" * 140_000 + b"\r\n\r\n", 431, "headers_too_large"),
], ids=["not http", "long target", "large header block"])
def test_a_refused_request_pipelined_behind_a_create_is_answered_after_the_creates_202(edge, fake_runpod, log_lines,
                                                                                        refused, status, code):
    [(first, created), (second, error)] = _answers(edge, create_head(len(CREATE_BODY)) + CREATE_BODY + refused)
    assert first == 202, created
    assert (second, error["error"]["code"]) == (status, code), error
    assert count_jobs(edge) == 1 and [run["input"]["job_id"] for run in fake_runpod.runs] == [created["job_id"]]
    [line] = [line for line in map(json.loads, log_lines) if line["event"] == "service.server_log"]
    assert (line["reason"], line["http"]["status"]) == (code, status)


def test_a_bad_chunk_in_a_requests_own_body_is_still_that_requests_400(edge):
    """The refusal of a body it cannot read answers the request it belongs to, at once: nothing is owed before it."""
    head = create_head(0).replace(b"content-length: 0", b"transfer-encoding: chunked")
    [(status, error)] = _answers(edge, head + b"zz\r\n{}\r\n0\r\n\r\n")
    assert (status, error["error"]["code"]) == (400, "bad_request"), error
    assert count_jobs(edge) == 0
