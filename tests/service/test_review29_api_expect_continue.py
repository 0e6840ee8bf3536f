"""A client that sends `Expect: 100-continue` with a Content-Length over the limit waits for the server's go-ahead
before it uploads the body (RFC 9110 10.1.1; curl does so for bodies over 1 MB). The local server told it
"100 Continue" first (uvicorn sends it at the app's first read), so the client uploaded the whole body, only to be
refused 413 after it; it now gets the refusal at once and sends nothing. Raw bytes over a loopback socket to the
in-process server (uvicorn with EdgeProtocol, the ASGI shell)."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest
from service_testkit import API_TOKEN, WEBHOOK_SECRET, count_jobs, edge_in_thread

from service.local_server import RunningServer
from service.signing import webhook_signature


@pytest.fixture
def edge(tmp_path, moto_endpoint, fake_runpod, log_lines) -> Iterator[RunningServer]:
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines) as server:
        yield server


def _first_answer(server: RunningServer, target: str, length: int, *fields: str) -> tuple[int, dict[str, str], dict]:
    """The first answer to a POST that announces `length` body bytes and waits for 100 Continue (none is sent)."""
    head = (f"POST {target} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n"
            f"expect: 100-continue\r\n" + "".join(f"{field}\r\n" for field in fields) + "\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(head.encode())
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, json.loads(reply.read())


def test_a_create_announcing_a_body_over_the_limit_is_refused_before_it_is_sent(edge):
    status, headers, answer = _first_answer(edge, "/api/queue/create", 5_000_000, f"authorization: Bearer {API_TOKEN}")
    assert (status, answer["error"]["code"]) == (413, "body_too_large"), answer
    assert headers["connection"] == "close"
    assert count_jobs(edge) == 0


def test_an_unsigned_webhook_announcing_a_large_body_gets_its_401_before_it_is_sent(edge):
    status, _, answer = _first_answer(edge, "/api/runpod/webhook?job=" + "a" * 32 + "&sig=" + "0" * 64, 5_000_000)
    assert (status, answer["error"]["code"]) == (401, "bad_signature"), answer


def test_a_signed_webhook_is_told_to_continue_up_to_its_own_larger_limit(edge):
    """The webhook's limit for a signed delivery is larger than a client's: such a body is waited for."""
    job_id = "b" * 32
    target = f"/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}"
    limit = edge.service.app.config.max_body_bytes
    with socket.create_connection(("127.0.0.1", edge.port), timeout=20) as sock:
        sock.sendall(f"POST {target} HTTP/1.1\r\nhost: x\r\ncontent-length: {limit * 2}\r\n"
                     "expect: 100-continue\r\n\r\n".encode())
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n")
