"""The local server's edge bounds slow clients as a production edge does: a request body is held to a minimum rate
(before, a client trickling its body held its connection for the whole 300 s body deadline), and a client that
stops reading an answer is disconnected (before, it held its connection and request task for ever)."""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from service_testkit import API_TOKEN, BUCKET, count_jobs, create_head, edge_in_thread

from service import local_server

_BODY = b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse at dusk"}}'


@pytest.fixture
def edge(tmp_path, moto_endpoint, fake_runpod, log_lines) -> Iterator[local_server.RunningServer]:
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines) as server:
        yield server


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    reply = http.client.HTTPResponse(sock)
    reply.begin()
    return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()


def test_a_body_trickled_below_the_minimum_rate_gets_a_408_long_before_the_body_deadline(edge, log_lines,
                                                                                      monkeypatch):
    monkeypatch.setattr(local_server, "BODY_GRACE_S", 0.5, raising=False)
    monkeypatch.setattr(local_server, "BODY_MIN_RATE_BPS", 1000, raising=False)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=20) as sock:
        sock.sendall(create_head(len(_BODY)) + _BODY[:10])
        # A byte every 0.1 s (10 bytes a second, a hundredth of the minimum), until the server answers. Without the
        # rule the whole body arrives after ~7 s and the job is created.
        answered = False
        for byte in _BODY[10:]:
            if select.select([sock], [], [], 0.1)[0]:
                answered = True
                break
            sock.sendall(bytes([byte]))
        assert answered, "the server waited for the whole trickled body"
        status, headers, body = _answer(sock)
    assert status == 408, body
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == "body_too_slow"
    assert "slower than 1000 bytes a second" in error["message"], error
    refused = [json.loads(line) for line in log_lines if json.loads(line)["event"] == "service.server_log"]
    assert [(line["reason"], line["http"]["status"]) for line in refused] == [("body_too_slow", 408)]
    # nothing half-done: no job was written for the refused body, and the server still takes a whole one
    assert count_jobs(edge) == 0
    created = httpx.post(edge.url + "/api/queue/create", content=_BODY, timeout=10,
                         headers={"authorization": f"Bearer {API_TOKEN}", "content-type": "application/json"})
    assert created.status_code == 202, created.text
    assert count_jobs(edge) == 1


def test_a_body_sent_in_pieces_above_the_minimum_rate_is_taken_past_the_grace(edge, monkeypatch):
    monkeypatch.setattr(local_server, "BODY_GRACE_S", 0.3, raising=False)
    monkeypatch.setattr(local_server, "BODY_MIN_RATE_BPS", 100, raising=False)
    # JSON whitespace pads the body to 6,000 bytes; each 1,000-byte piece earns 10 s at the minimum rate, and the
    # pieces come 0.2 s apart: the body takes over a second, past the grace, at 50 times the minimum.
    body = _BODY[:-1] + b" " * (6000 - len(_BODY)) + b"}"
    with socket.create_connection(("127.0.0.1", edge.port), timeout=20) as sock:
        sock.sendall(create_head(len(body)))
        for start in range(0, len(body), 1000):
            time.sleep(0.2)
            sock.sendall(body[start:start + 1000])
        status, _, answer = _answer(sock)
    assert status == 202, answer
    assert count_jobs(edge) == 1


def test_a_client_that_stops_reading_a_result_download_is_disconnected_and_its_task_freed(edge, log_lines, s3,
                                                                                         monkeypatch):
    """Before, a client that stopped reading a result held its connection, its request task and the store's
    stream for ever: nothing bounded how long the server waits for a client to take an answer."""
    monkeypatch.setattr(local_server, "WRITE_STALL_S", 0.5, raising=False)
    key = "results/" + "c" * 32 + "/0.png"
    size = 16 * 1024 * 1024  # far more than the socket buffers and the server's write buffer hold
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"\x89PNG" + b"\0" * (size - 4), ContentType="image/png")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(20)
        sock.connect(("127.0.0.1", edge.port))
        sock.sendall(f"GET /api/{key.replace('results/', 'result/results/', 1)} HTTP/1.1\r\nhost: x\r\n"
                     f"authorization: Bearer {API_TOKEN}\r\n\r\n".encode())
        deadline = time.monotonic() + 20  # a bound on a hung server, not a measurement
        while not _stalled_lines(log_lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        stalled = _stalled_lines(log_lines)
        assert len(stalled) == 1, "the server still waits for a client that reads nothing"
        assert stalled[0]["level"] == "warning" and "none of the answer for 0.5 seconds" in stalled[0]["message"]
        received = b""
        try:
            while chunk := sock.recv(1 << 20):
                received += chunk
        except ConnectionResetError:
            pass
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: %d" % size in head.lower()
    assert len(body) < size  # cut: the client can tell the download is not whole
    deadline = time.monotonic() + 20
    while edge._server.server_state.tasks and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not edge._server.server_state.tasks  # the request's task ended (and closed the store's stream)
    assert httpx.get(edge.url + "/healthz", timeout=10).status_code == 200


def _stalled_lines(log_lines) -> list[dict]:
    return [line for line in map(json.loads, list(log_lines)) if line.get("reason") == "client_stalled"]
