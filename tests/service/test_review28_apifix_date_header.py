"""The local server sends a Date header (review 28: a client written from the docs found none). HTTP requires it of a
server with a clock (RFC 9110 6.6.1), and a client judges its own clock's skew by it before comparing a result's
`url_expires_at` or a job's `settle_by` with its clock; the Worker's edge sends one in the cloud. The service's
uvicorn runs without its own Date (QuietServer's loop does not tick), so the edge keeps one per second."""

from __future__ import annotations

import email.utils
import http.client
import socket
import time

from service_testkit import API_TOKEN, edge_in_thread, tls_hello_refused

from service import local_server

T0 = 1_900_000_000  # a second of the test's clock, far from the machine's


def _get(sock: socket.socket, path: str) -> http.client.HTTPResponse:
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {API_TOKEN}\r\n\r\n".encode())
    reply = http.client.HTTPResponse(sock)
    reply.begin()
    reply.read()
    return reply


def test_every_answer_carries_the_date_of_its_second_once(tmp_path, moto_endpoint, fake_runpod, log_lines,
                                                          monkeypatch):
    clock = [T0 + 0.7]
    monkeypatch.setattr(local_server, "_now", lambda: clock[0])
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        first = _get(sock, "/healthz")
        assert first.status == 200
        assert first.headers.get_all("Date") == [email.utils.formatdate(T0, usegmt=True)]
        # the same kept-alive connection, a minute later: the server's clock, not its start's
        clock[0] = T0 + 61.2
        later = _get(sock, "/api/status/" + "0" * 32)  # the app's own 404 answer
        assert later.status == 404
        assert later.headers.get_all("Date") == [email.utils.formatdate(T0 + 61, usegmt=True)]
        # and a refusal the edge writes itself before the app sees the request
        refused = tls_hello_refused(server.port)   # a TLS ClientHello to the plain port
        assert refused.status == 400
        assert refused.headers.get_all("Date") == [email.utils.formatdate(T0 + 61, usegmt=True)]


def test_the_local_server_process_sends_a_date_a_client_can_judge_its_clock_by(local_server):
    with socket.create_connection(("127.0.0.1", local_server.port), timeout=20) as sock:
        reply = _get(sock, "/healthz")
    [date] = reply.headers.get_all("Date") or [None]
    assert date is not None, dict(reply.headers)
    sent = email.utils.parsedate_to_datetime(date).timestamp()
    assert abs(sent - time.time()) < 300, date  # the machine's clock, in HTTP's IMF-fixdate form
    assert date.endswith(" GMT")
