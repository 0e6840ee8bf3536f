"""The local edge's URL and header limits are "at most": a request target of exactly 16 KB and a header block of
exactly 128 KB (counted as sent) are served, one byte more is a 414 or a 431, as the Worker's edge decides."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest
from service_testkit import API_TOKEN, ROOT, make_config

from service import local_server

_PATH = "/api/workflows?pad="


@pytest.fixture
def edge(tmp_path, moto_endpoint, fake_runpod, log_lines) -> Iterator[local_server.RunningServer]:
    config = make_config(runpod_endpoint_base=fake_runpod.base, db_path=str(tmp_path / "db.sqlite"),
                         s3_endpoint_url=moto_endpoint, apply_migrations_from=str(ROOT / "migrations"))
    server = local_server.start_in_thread(config, log_sink=log_lines.sink)
    yield server
    server.stop()


def _status(server: local_server.RunningServer, target: str, pad: int = 0) -> tuple[int, str | None]:
    head = f"GET {target} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {API_TOKEN}\r\n"
    if pad:
        head += f"x-pad: {'a' * pad}\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall((head + "\r\n").encode())
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        body = reply.read()
    code = json.loads(body)["error"]["code"] if reply.status >= 400 else None
    return reply.status, code


def test_a_request_target_of_exactly_the_url_limit_is_served_and_one_byte_more_is_a_414(edge):
    at_limit = _PATH + "a" * (local_server.URL_LIMIT_BYTES - len(_PATH))
    assert len(at_limit) == local_server.URL_LIMIT_BYTES
    assert _status(edge, at_limit) == (200, None)
    assert _status(edge, at_limit + "a") == (414, "uri_too_long")


def test_a_header_block_of_exactly_the_limit_as_sent_is_served_and_one_byte_more_is_a_431(edge):
    target = "/api/workflows"
    overhead = len(": \r\n")
    counted = (len(target) + len("host") + len("x") + overhead
               + len("authorization") + len(f"Bearer {API_TOKEN}") + overhead + len("x-pad") + overhead)
    pad = local_server.HEAD_LIMIT_BYTES - counted
    assert _status(edge, target, pad) == (200, None)
    assert _status(edge, target, pad + 1) == (431, "headers_too_large")
