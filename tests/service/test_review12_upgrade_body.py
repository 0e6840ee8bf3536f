"""A request offering an upgrade (h2c: `curl --http2` on an http:// URL, Java's default HttpClient) with a body: httptools
skips the body of such a request, so the app got an empty body (400 invalid_json) and the body's bytes were parsed as a
second request on the connection. The local server refuses it by name instead; a GET offering one is plain HTTP."""

from __future__ import annotations

import json
import socket

import pytest
from service_testkit import API_TOKEN, ROOT, make_config

from service import local_server


@pytest.fixture
def edge(tmp_path, moto_endpoint, fake_runpod, log_lines):
    config = make_config(runpod_endpoint_base=fake_runpod.base, db_path=str(tmp_path / "db.sqlite"),
                         s3_endpoint_url=moto_endpoint, apply_migrations_from=str(ROOT / "migrations"))
    server = local_server.start_in_thread(config, log_sink=log_lines.sink)
    yield server
    server.stop()


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_body_sent_with_an_upgrade_offer_is_refused_by_name_and_read_as_no_second_request(edge):
    body = json.dumps({"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode()
    head = (f"POST /api/queue/create HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_TOKEN}\r\n"
            "Content-Type: application/json\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            f"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: {len(body)}\r\n\r\n")
    answer = _exchange(edge.port, head.encode() + body)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"upgrade_not_served" in answer
    assert answer.count(b"HTTP/1.1 4") == 1  # the body was not parsed as another request


def test_a_get_offering_an_upgrade_is_still_answered_as_plain_http(edge):
    answer = _exchange(edge.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: h2c\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 "), answer
