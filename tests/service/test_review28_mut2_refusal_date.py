"""A refusal the edge writes itself (before the app sees the request) carries the Date of its own second, not the
one of the last answer the app gave: a client judging its clock's skew by it would be off by as long as the server
sat idle."""

from __future__ import annotations

import email.utils
import http.client
import socket

from service_testkit import edge_in_thread

from service import local_server

T0 = 1_900_000_000


def test_a_refusal_after_an_idle_spell_carries_its_own_seconds_date(tmp_path, moto_endpoint, fake_runpod, log_lines,
                                                                    monkeypatch):
    clock = [T0 + 0.5]
    monkeypatch.setattr(local_server, "_now", lambda: clock[0])
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            first = http.client.HTTPResponse(sock)
            first.begin()
            first.read()
            assert first.headers.get_all("Date") == [email.utils.formatdate(T0, usegmt=True)]
        clock[0] = T0 + 3600.5   # an hour with no request
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as tls:
            tls.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a TLS ClientHello to the plain port
            refused = http.client.HTTPResponse(tls)
            refused.begin()
            assert refused.status == 400
            assert refused.headers.get_all("Date") == [email.utils.formatdate(T0 + 3600, usegmt=True)]
