"""Mutation audit (session 29): `Expect: 100-continue` is matched as RFC 9110 says, case-insensitively (and
surrounding spaces aside): a client that spells it `100-Continue` and announces a body over the limit is refused at
once too, instead of being told to continue and uploading the whole body in vain."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest
from service_testkit import API_TOKEN, count_jobs, edge_in_thread

from service.local_server import RunningServer


@pytest.fixture
def edge(tmp_path, moto_endpoint, fake_runpod, log_lines) -> Iterator[RunningServer]:
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines) as server:
        yield server


@pytest.mark.parametrize("expect", ["100-Continue", "100-CONTINUE"])
def test_an_expect_spelled_in_capitals_over_the_limit_is_refused_at_once(edge, expect: str) -> None:
    head = (f"POST /api/queue/create HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: 5000000\r\nexpect: {expect}\r\nauthorization: Bearer {API_TOKEN}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", edge.port), timeout=20) as sock:
        sock.sendall(head.encode())
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        status, answer = reply.status, json.loads(reply.read())
    assert (status, answer["error"]["code"]) == (413, "body_too_large"), (status, answer)
    assert count_jobs(edge) == 0
