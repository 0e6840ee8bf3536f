"""JSON bodies a hostile client (or a proxy that reads them otherwise) sends, through the real local server (raw
bytes on a socket to uvicorn with EdgeProtocol, the ASGI shell, SQLite): an object naming one key twice was taken
on every route, the last value winning (`{"workflow_id": "a", "workflow_id": "b"}` made a job of workflow b, while a
WAF or proxy that reads the first saw workflow a). It is a 400 `invalid_json` naming the key now, on create, cancel,
recover and the webhook, before anything is written or RunPod called. A body that begins with a byte order mark is
refused saying so (it was "Expecting value at line 1 column 1")."""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
from collections.abc import Iterator

import pytest
from service_testkit import API_TOKEN, WEBHOOK_SECRET, count_jobs, edge_in_thread

from service.local_server import RunningServer
from service.signing import webhook_signature


@pytest.fixture
def edge(tmp_path, moto_endpoint, fake_runpod, log_lines) -> Iterator[RunningServer]:
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines) as server:
        yield server


def _post(server: RunningServer, target: str, body: bytes, token: bool = True) -> tuple[int, dict]:
    head = f"POST {target} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    head += f"authorization: Bearer {API_TOKEN}\r\n" if token else ""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(head.encode() + b"connection: close\r\n\r\n" + body)
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        assert reply.getheader("content-type") == "application/json"
        return reply.status, json.loads(reply.read())


def _job(server: RunningServer, job_id: str) -> dict:
    conn = sqlite3.connect(server.service.app.config.db_path)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())
    finally:
        conn.close()


def _line(log_lines, status: int) -> dict:
    """The request line of the last request answered `status`."""
    return [line for line in map(json.loads, log_lines) if line.get("http", {}).get("status") == status][-1]


CREATES = [
    (b'{"workflow_id": "flux-schnell", "workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a"}}', "workflow_id"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a cat", "prompt": "a dog"}}', "prompt"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a"}, "inputs": {"prompt": "b"}}', "inputs"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a", "\\u0070rompt": "b"}}', "prompt"),  # one key, escaped
    (b'{"inputs": {"prompt": "a"}, "workflow_id": "sdxl-txt2img", "workflow_id": "sdxl-txt2img"}', "workflow_id"),
    # "\ud800" and "\udc00" are each read as U+FFFD: one key, twice
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a", "\\ud800": 1, "\\udc00": 1}}', "\ufffd"),
]


@pytest.mark.parametrize(("body", "key"), CREATES)
def test_a_create_naming_a_key_twice_is_a_400_naming_it_and_makes_no_job(edge, fake_runpod, log_lines, body, key):
    status, answer = _post(edge, "/api/queue/create", body)
    assert (status, answer["error"]["code"]) == (400, "invalid_json"), answer
    assert f'names the key "{key}" twice' in answer["error"]["message"], answer
    assert count_jobs(edge) == 0 and fake_runpod.runs == []
    assert _line(log_lines, 400)["reason"] == "invalid_json"


def test_cancel_recover_and_a_signed_webhook_naming_a_key_twice_are_refused_and_change_nothing(edge, fake_runpod,
                                                                                            log_lines):
    status, created = _post(edge, "/api/queue/create", b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a"}}')
    assert status == 202, created
    job_id = created["job_id"]
    before = _job(edge, job_id)
    rid = before["runpod_job_id"]
    hook = f"/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}"
    for target, body, key, token in (
            (f"/api/cancel/{job_id}", b'{"reason": 1, "reason": 2}', "reason", True),
            (f"/api/admin/recover/{job_id}", b'{"runpod_job_id": "other-u1", "runpod_job_id": "%s"}' % rid.encode(),
             "runpod_job_id", True),
            (hook, b'{"id": "%s", "status": "FAILED", "status": "COMPLETED", "error": "x"}' % rid.encode(), "status",
             False)):
        status, answer = _post(edge, target, body, token)
        assert (status, answer["error"]["code"]) == (400, "invalid_json"), (target, answer)
        assert f'names the key "{key}" twice' in answer["error"]["message"], answer
    assert _job(edge, job_id) == before  # still queued, nothing recorded
    assert fake_runpod.status_calls == [] and len(fake_runpod.runs) == 1  # no /status read, no second /run
    refused = _line(log_lines, 400)
    assert (refused["event"], refused["level"], refused["job_id"]) == ("webhook.refused", "error", job_id)


def test_a_key_repeated_in_separate_objects_is_no_repeat(edge):
    status, answer = _post(edge, "/api/queue/create",
                           b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a", "width": 512}}')
    assert status == 202, answer
    status, answer = _post(edge, f"/api/cancel/{answer['job_id']}", b'[{"a": 1}, {"a": 1}]')
    assert (status, answer["error"]["code"]) == (400, "invalid_body"), answer  # JSON, not a cancel's: not invalid_json


def test_a_body_beginning_with_a_byte_order_mark_is_refused_saying_so(edge):
    status, answer = _post(edge, "/api/queue/create",
                           b'\xef\xbb\xbf{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a"}}')
    assert (status, answer["error"]["code"]) == (400, "invalid_json"), answer
    assert "byte order mark" in answer["error"]["message"], answer
    assert count_jobs(edge) == 0
