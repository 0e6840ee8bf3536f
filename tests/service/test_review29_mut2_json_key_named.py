"""Mutation audit (session 29): a body naming a key twice is refused naming the key, cut to 64 characters (a client
that repeats a 10 kB key does not get it back in the refusal, nor in the log line)."""

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


def _create(server: RunningServer, body: bytes) -> tuple[int, dict]:
    head = (f"POST /api/queue/create HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nauthorization: Bearer {API_TOKEN}\r\nconnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(head.encode() + body)
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        return reply.status, json.loads(reply.read())


def test_a_long_key_named_twice_is_named_cut_to_64_characters(edge, fake_runpod) -> None:
    key = "k" * 61 + "TAIL-OF-A-LONG-KEY" * 50
    body = json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a"}})[:-1].encode()
    body += b', "%s": 1, "%s": 2}' % (key.encode(), key.encode())
    status, answer = _create(edge, body)
    assert (status, answer["error"]["code"]) == (400, "invalid_json"), answer
    message = answer["error"]["message"]
    assert f'names the key "{"k" * 61}..." twice in one object' in message, message
    assert "TAIL-OF-A-LONG-KEY" not in message, message
    assert count_jobs(edge) == 0 and fake_runpod.runs == []
