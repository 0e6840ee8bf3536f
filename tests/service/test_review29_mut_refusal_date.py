"""Review 29 (mut): a refusal the edge writes itself (before any request of that second reached the app) carries the
Date of the second it is written in, not the one of the last request answered: a client judging its clock's skew by
it would otherwise be off by as long as the server sat idle."""

from __future__ import annotations

import email.utils
import socket

from service_testkit import edge_in_thread, tls_hello_refused
from test_review28_apifix_date_header import T0, _get

from service import local_server


def test_a_refusal_after_an_idle_spell_carries_the_date_of_its_own_second(tmp_path, moto_endpoint, fake_runpod,
                                                                           log_lines, monkeypatch):
    clock = [T0 + 0.2]
    monkeypatch.setattr(local_server, "_now", lambda: clock[0])
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
            assert _get(sock, "/healthz").headers.get_all("Date") == [email.utils.formatdate(T0, usegmt=True)]
        clock[0] = T0 + 3600.5   # an hour with no request
        refused = tls_hello_refused(server.port)
        assert refused.status == 400
        assert refused.headers.get_all("Date") == [email.utils.formatdate(T0 + 3600, usegmt=True)]
