"""A client that closes its sending side once its request is out (a TCP half-close: `nc -N`, a client that shuts
down its writes after the request) is still answered by the local server. uvicorn closed the connection at the
client's FIN: a create made its job and called RunPod, its line said 202, and the client got no answer at all, so
never learnt its job's id. A body or header block the close cuts short got no answer and no log line; it is now a
JSON 400 (`body_unreadable`, as the Worker answers a body it cannot read to its end; `bad_request`) with its
`service.server_log` line. Raw bytes over a loopback socket to the in-process server (uvicorn with EdgeProtocol)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from raw_http import exchange
from service_testkit import API_TOKEN, count_jobs, create_head, edge_in_thread

from service.local_server import RunningServer

CREATE_BODY = b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}'


@pytest.fixture
def edge(tmp_path, moto_endpoint, fake_runpod, log_lines) -> Iterator[RunningServer]:
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines) as server:
        yield server


def _half_closed(server: RunningServer, raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Send `raw`, close the sending side, read until the server closes the connection: its answers, in order."""
    return exchange(server.port, raw, half_close=True)


def _edge_lines(log_lines) -> list[dict]:
    return [line for line in map(json.loads, log_lines) if line["event"] == "service.server_log"]


def test_a_create_sent_whole_and_then_half_closed_gets_its_202_with_the_job_id(edge, fake_runpod):
    [(status, headers, body)] = _half_closed(edge, create_head(len(CREATE_BODY)) + CREATE_BODY)
    assert status == 202, body
    job_id = json.loads(body)["job_id"]
    assert headers["location"] == f"/api/status/{job_id}" and headers["connection"] == "close"
    assert count_jobs(edge) == 1 and len(fake_runpod.runs) == 1 and fake_runpod.runs[0]["input"]["job_id"] == job_id


def test_pipelined_requests_then_a_half_close_are_each_answered_in_order(edge):
    get = f"GET /api/workflows HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {API_TOKEN}\r\n\r\n".encode()
    answers = _half_closed(edge, get + create_head(len(CREATE_BODY)) + CREATE_BODY + get)
    assert [status for status, _, _ in answers] == [200, 202, 200]
    assert count_jobs(edge) == 1


@pytest.mark.parametrize("cut", [
    create_head(len(CREATE_BODY)) + CREATE_BODY[:20],  # Content-Length says more than came
    (b"POST /api/queue/create HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + API_TOKEN.encode()
     + b"\r\ntransfer-encoding: chunked\r\n\r\n10\r\n" + CREATE_BODY[:16] + b"\r\n"),  # no last chunk
], ids=["content-length", "chunked"])
def test_a_body_the_half_close_cuts_short_is_a_400_body_unreadable_with_its_line(edge, log_lines, cut):
    [(status, headers, body)] = _half_closed(edge, cut)
    assert (status, headers["content-type"], headers["connection"]) == (400, "application/json", "close")
    error = json.loads(body)["error"]
    assert error["code"] == "body_unreadable" and "closed its side" in error["message"], error
    [line] = _edge_lines(log_lines)
    assert (line["level"], line["reason"], line["http"]["status"]) == ("warning", "body_unreadable", 400)
    assert count_jobs(edge) == 0


def test_a_header_block_the_half_close_cuts_short_is_a_400_bad_request_with_its_line(edge, log_lines):
    [(status, _, body)] = _half_closed(edge, b"POST /api/queue/create HTTP/1.1\r\nhost: x\r\nauthoriz")
    assert (status, json.loads(body)["error"]["code"]) == (400, "bad_request")
    [line] = _edge_lines(log_lines)
    assert (line["reason"], line["http"]["status"]) == ("bad_request", 400)


def test_a_connection_half_closed_with_nothing_sent_is_closed_without_an_answer_or_a_line(edge, log_lines):
    assert _half_closed(edge, b"") == []
    assert _edge_lines(log_lines) == []
