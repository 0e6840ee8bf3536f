"""The RunPod emulator's HTTP edge as a front end answers it: a request that does not arrive in time is cut off (before,
a client that sent half a request, or trickled it a byte at a time, held a connection and a server thread forever),
and every method, and every request http.server refuses itself, is answered in the JSON of the plane it was sent to
instead of http.server's HTML 501/400 pages (a HEAD's answer without a body)."""

from __future__ import annotations

import http.client
import json
import socket
import time

from emulator_harness import API_KEY
from raw_http import connect, one_answer, read_all, trickle

from goldgate.local.runpod import server

AUTH = b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"


def _json_body(answer: bytes) -> dict:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


def test_a_body_that_stops_arriving_gets_a_408_and_its_connection_closed(make_stack, monkeypatch) -> None:
    monkeypatch.setattr(server._HTTPHandler, "request_timeout_s", 0.5)
    stack = make_stack(no_gpu_capacity=True)  # no worker process: only the emulator's own connections
    ep = stack.endpoint()
    with connect(stack.emulator.base_url) as sock:
        sock.sendall(b"POST /v2/" + ep.id.encode() + b"/run HTTP/1.1\r\nHost: x\r\n" + AUTH
                     + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b'{"input": {')
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert not answer.endswith(b"<<still open>>")
    assert b"Connection: close" in answer
    assert "did not arrive whole" in _json_body(answer)["error"]
    jobs = stack.jobs(ep.id)
    assert jobs.health().in_queue == 0  # the half request queued nothing
    assert jobs.run({"x": 1}).status == "IN_QUEUE"  # and a whole one is still taken


def test_a_request_trickled_a_byte_at_a_time_is_cut_off_before_it_is_all_sent(make_stack, monkeypatch) -> None:
    """Each byte comes well within any per-read timeout: only a deadline for the whole request ends it."""
    monkeypatch.setattr(server._HTTPHandler, "request_timeout_s", 0.5)
    stack = make_stack(no_gpu_capacity=True)
    ep = stack.endpoint()
    request = (b"GET /v2/" + ep.id.encode() + b"/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 60 + b"\r\n"
               + AUTH + b"\r\n")
    with connect(stack.emulator.base_url) as sock:
        sent = trickle(sock, request)
        answer = read_all(sock)
    assert sent < len(request), answer[:300]
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert not answer.endswith(b"<<still open>>")


def test_a_connection_that_begins_no_request_is_closed_without_an_answer(make_stack, monkeypatch) -> None:
    monkeypatch.setattr(server._HTTPHandler, "idle_timeout_s", 0.5)
    stack = make_stack(no_gpu_capacity=True)
    ep = stack.endpoint()
    with connect(stack.emulator.base_url) as idle, connect(stack.emulator.base_url) as kept:
        kept.sendall(b"GET /v2/" + ep.id.encode() + b"/health HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n")
        head, _ = one_answer(kept)
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert read_all(idle) == b""  # never began a request: closed, nothing said
        assert read_all(kept) == b""  # idle after its answer: the same


def test_a_request_that_keeps_to_the_deadlines_is_served_on_a_kept_alive_connection(make_stack, monkeypatch) -> None:
    monkeypatch.setattr(server._HTTPHandler, "request_timeout_s", 0.5)
    stack = make_stack(no_gpu_capacity=True)
    ep = stack.endpoint()
    host, port = stack.emulator.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        for _ in range(2):
            conn.request("GET", f"/v2/{ep.id}/health", headers={"Authorization": f"Bearer {API_KEY}"})
            answer = conn.getresponse()
            assert answer.status == 200
            assert json.loads(answer.read())["jobs"]["inQueue"] == 0
            time.sleep(1.0)  # idle between requests, past the request deadline: not counted against the next
    finally:
        conn.close()


def test_head_options_and_unknown_methods_are_json_405s_with_allow_or_404s(make_stack) -> None:
    stack = make_stack(no_gpu_capacity=True)
    ep = stack.endpoint()
    host, port = stack.emulator.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    auth = {"Authorization": f"Bearer {API_KEY}"}
    try:
        conn.request("HEAD", f"/v2/{ep.id}/health", headers=auth)
        head = conn.getresponse()
        assert (head.status, head.getheader("Allow"), head.read()) == (405, "GET", b"")
        # The connection still serves: no body was written after the HEAD's answer to be read as the next answer.
        conn.request("GET", f"/v2/{ep.id}/health", headers=auth)
        health = conn.getresponse()
        assert health.status == 200 and "jobs" in json.loads(health.read())

        conn.request("OPTIONS", f"/v2/{ep.id}/run", headers=auth)
        options = conn.getresponse()
        assert options.status == 405 and options.getheader("Allow") == "POST"
        assert options.getheader("Content-Type") == "application/json"
        assert json.loads(options.read()) == {"error": f"OPTIONS is not allowed on /v2/{ep.id}/run"}

        conn.request("TRACE", "/v2/serverless", headers=auth)  # the control plane: problem JSON
        trace = conn.getresponse()
        assert trace.status == 405 and trace.getheader("Allow") == "GET, POST"
        assert trace.getheader("Content-Type") == "application/problem+json"
        assert json.loads(trace.read())["status"] == 405

        conn.request("FOO", "/v2/nothing/here/at/all", headers=auth)
        unknown = conn.getresponse()
        assert unknown.status == 404 and "error" in json.loads(unknown.read())
    finally:
        conn.close()


def test_a_request_line_http_server_cannot_parse_is_answered_in_json_with_a_status_line(make_stack) -> None:
    stack = make_stack(no_gpu_capacity=True)
    for request, status in ((b"GARBAGE\r\n\r\n", 400), (b"GET /v2/serverless HTTP/2.0\r\nHost: x\r\n\r\n", 505),
                            (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414)):
        with connect(stack.emulator.base_url) as sock:
            sock.sendall(request)
            answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:300]
        assert b"Content-Type: application/json" in answer.split(b"\r\n\r\n", 1)[0]
        assert "error" in _json_body(answer)


def test_a_run_or_runsync_body_over_every_limit_is_refused_naming_that_operations_limit(make_stack) -> None:
    """Before, a body over 21 MiB was told 'must be 0..22020096 bytes': a client that cut it to 15 MB was then told
    /run takes 10 MB."""
    stack = make_stack(no_gpu_capacity=True)
    ep = stack.endpoint()
    for operation, limit in (("run", stack.emulator.config.max_run_payload_bytes),
                             ("runsync", stack.emulator.config.max_runsync_payload_bytes)):
        with connect(stack.emulator.base_url) as sock:
            sock.sendall(b"POST /v2/" + ep.id.encode() + b"/" + operation.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                         + AUTH + b"Content-Length: 23000000\r\n\r\n")  # not sent: refused unread
            answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
        assert f"the limit for /{operation} is {limit} bytes" in _json_body(answer)["error"]


def test_an_answer_the_client_takes_none_of_is_dropped_with_its_connection(make_stack, monkeypatch) -> None:
    """The other way: a client that stops reading a large answer (a 9 MB job output) no longer holds a server
    thread blocked in its write forever."""
    stack = make_stack()
    ep = stack.endpoint()
    jobs = stack.jobs(ep.id)
    job = jobs.run({"blob": "x" * (9 * 1024 * 1024)})
    assert stack.finished(jobs, job.id).status == "COMPLETED"
    monkeypatch.setattr(server._HTTPHandler, "write_timeout_s", 0.5)
    host, port = stack.emulator.base_url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the answer cannot fit in the buffers
        sock.settimeout(20)
        sock.connect((host, int(port)))
        sock.sendall(b"GET /v2/" + ep.id.encode() + b"/status/" + job.id.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                     + AUTH + b"\r\n")
        time.sleep(5)  # takes none of it, for ten times the write bound
        answer = read_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head[:300]
    length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    assert length > 9 * 1024 * 1024
    assert len(body) < length and not answer.endswith(b"<<still open>>")  # cut off, and the connection closed
