"""The local server's HTTP edge: what a client gets for a request uvicorn refuses before the app sees it (the API's
JSON error shape, one schema line), the Worker's header limits, a header block that never ends or only trickles
in, and an Upgrade request. Raw bytes over a loopback socket, to the in-process server."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from service_testkit import API_TOKEN, ROOT, make_config

from service import local_server


@pytest.fixture
def edge(tmp_path, moto_endpoint, fake_runpod, log_lines) -> Iterator[local_server.RunningServer]:
    config = make_config(runpod_endpoint_base=fake_runpod.base, db_path=str(tmp_path / "db.sqlite"),
                         s3_endpoint_url=moto_endpoint, apply_migrations_from=str(ROOT / "migrations"))
    server = local_server.start_in_thread(config, log_sink=log_lines.sink)
    yield server
    server.stop()


def _connect(server: local_server.RunningServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=20)


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    reply = http.client.HTTPResponse(sock)
    reply.begin()
    return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()


def _exchange(server: local_server.RunningServer, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    with _connect(server) as sock:
        sock.sendall(raw)
        return _answer(sock)


def _events(log_lines) -> list[dict]:
    return [json.loads(line) for line in log_lines]


def _refused(log_lines) -> list[dict]:
    """The server's lines for requests it refused before the app saw them."""
    return [line for line in _events(log_lines) if line["event"] == "service.server_log"]


def _assert_json_refusal(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> str:
    got, headers, body = answer
    assert got == status, (got, body)
    assert headers["content-type"] == "application/json" and headers["x-content-type-options"] == "nosniff", headers
    assert headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == code, error
    return error["message"]


@pytest.mark.parametrize(("raw", "reason"), [
    (b"HELLO\r\n\r\n", "Invalid method"),
    (b"POST /api/queue/create HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}",
     "Duplicate Content-Length"),
    (b"POST /api/queue/create HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n{}", "Content-Length"),
    ((b"POST /api/queue/create HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n"
      b"2\r\n{}\r\n0\r\n\r\n"), "Transfer-Encoding"),
    (b"POST /api/queue/create HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
     "chunk size"),
    (b"POST /api/queue/create HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n{}", "Transfer-Encoding"),
    (b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-a: b\r\n c\r\n\r\n", "whitespace"),
    (b"GET /heal\x00thz HTTP/1.1\r\nhost: x\r\n\r\n", "url"),
    (b"GET /healthz HTTP/3.0\r\nhost: x\r\n\r\n", "HTTP version"),
    (b"CONNECT api.example:443?sig=" + b"a" * 64 + b" HTTP/1.1\r\nhost: api.example\r\n\r\n", "not a path"),
])
def test_a_request_uvicorn_cannot_parse_is_the_apis_json_400_saying_why_with_one_schema_line(edge, log_lines, raw,
                                                                                           reason):
    """It was uvicorn's plain-text "Invalid HTTP request received.", and the log line said no more than that."""
    message = _assert_json_refusal(_exchange(edge, raw), 400, "bad_request")
    assert message.startswith("the request is not valid HTTP/1.1") and reason in message, message
    assert "a" * 64 not in message  # the parser's own text for a bad target quotes it, signature and all
    [line] = _refused(log_lines)
    assert (line["level"], line["reason"], line["http"]["status"]) == ("warning", "bad_request", 400)
    assert line["data"]["client"].startswith("127.0.0.1:")
    assert reason in line["message"]


@pytest.mark.parametrize(("raw", "code", "says"), [
    (bytes.fromhex("160301009a010000960303") + bytes(150), "tls_not_served", "use an http:// URL"),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "http2_not_served", "send HTTP/1.1 requests"),
])
def test_tls_or_http2_sent_to_the_plain_http_port_is_told_what_this_port_speaks(edge, log_lines, raw, code, says):
    """An https:// public URL pointed at the local stack is the usual cause; the log line says so."""
    assert says in _assert_json_refusal(_exchange(edge, raw), 400, code)
    [line] = _refused(log_lines)
    assert line["reason"] == code and says in line["message"]


def _get(path: str, *fields: tuple[str, str]) -> bytes:
    head = f"GET {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {API_TOKEN}\r\n"
    return (head + "".join(f"{name}: {value}\r\n" for name, value in fields) + "\r\n").encode()


def test_headers_over_the_workers_128_kb_are_a_431_and_a_url_over_its_16_kb_a_414_as_in_the_cloud(edge, log_lines):
    """Cloudflare refuses request headers over 128 KB and URLs over 16 KB before the Worker runs: the local server
    took any size (a 200 KB header was a 200), so a client that worked locally failed in the cloud."""
    assert _exchange(edge, _get("/api/workflows", ("x-pad", "a" * 100_000)))[0] == 200
    assert _exchange(edge, _get("/api/workflows?pad=" + "a" * 15_000))[0] == 200
    assert _exchange(edge, _get("/api/workflows", *[(f"x-h{i}", "v") for i in range(2000)]))[0] == 200
    message = _assert_json_refusal(_exchange(edge, _get("/api/workflows", ("x-pad", "a" * 140_000))), 431,
                                   "headers_too_large")
    assert "131072 bytes" in message
    many = [(f"x-h{i}", "v" * 60) for i in range(2500)]  # small fields adding up: the total counts
    _assert_json_refusal(_exchange(edge, _get("/api/workflows", *many)), 431, "headers_too_large")
    message = _assert_json_refusal(_exchange(edge, _get("/api/workflows?pad=" + "a" * 17_000)), 414, "uri_too_long")
    assert "16384 bytes" in message
    assert [line["http"]["status"] for line in _refused(log_lines)] == [431, 431, 414]


def test_a_header_field_that_never_ends_is_refused_once_past_the_limit_not_buffered_without_end(edge, log_lines):
    """The parser buffers a field line until its CRLF (re-concatenating it on each read): a client that never
    sends one made the server hold, and copy, everything it sent."""
    with _connect(edge) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-endless: ")
        try:
            for _ in range(64):  # 4 MiB at most; the server refuses and closes long before
                sock.sendall(b"a" * 65_536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        _assert_json_refusal(_answer(sock), 431, "headers_too_large")
    assert [line["reason"] for line in _refused(log_lines)] == ["headers_too_large"]


def test_a_client_trickling_its_header_block_gets_a_408_and_an_idle_connection_is_closed(edge, log_lines, monkeypatch):
    """Before, a connection that never finished its header block (or never sent a byte) was held open forever:
    uvicorn's httptools protocol arms its keep-alive timeout only after a response."""
    monkeypatch.setattr(local_server, "HEAD_TIMEOUT_S", 0.5, raising=False)
    # Each sends at once: the first request's deadline counts from the connection opening, so a pause between a
    # connect and its bytes on a loaded machine would close it unanswered instead.
    trickling = []
    for _ in range(5):
        sock = _connect(edge)
        trickling.append(sock)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: a")
    blank = _connect(edge)
    blank.sendall(_get("/healthz"))
    idle = _connect(edge)
    try:
        assert _answer(blank)[0] == 200
        blank.sendall(b"\r\n")  # a blank line begins no request, but stopped uvicorn's keep-alive timeout
        # the others are answered meanwhile
        assert httpx.get(edge.url + "/healthz", timeout=10).json() == {"status": "ok", "stack": "test"}
        for sock in trickling:
            message = _assert_json_refusal(_answer(sock), 408, "request_timeout")
            assert "header block did not arrive within 0.5 seconds" in message
        assert idle.recv(1024) == b""  # closed without an answer: it never began a request
        assert blank.recv(1024) == b""
    finally:
        for sock in (*trickling, idle, blank):
            sock.close()
    assert [line["reason"] for line in _refused(log_lines)] == ["request_timeout"] * 5


def test_a_body_that_stops_arriving_gets_a_408_and_frees_the_connection_and_records_nothing(edge, log_lines,
                                                                                          monkeypatch):
    """A create whose Content-Length promised more than came held its connection and its request task forever."""
    monkeypatch.setattr(local_server, "BODY_TIMEOUT_S", 0.5, raising=False)
    body = b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "p"}}'
    with _connect(edge) as sock:
        sock.sendall(b"POST /api/queue/create HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + API_TOKEN.encode()
                     + b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body[:20])
        message = _assert_json_refusal(_answer(sock), 408, "request_timeout")
        assert "body did not arrive whole within 0.5 seconds" in message
    assert [line["reason"] for line in _refused(log_lines)] == ["request_timeout"]
    assert not [line for line in _events(log_lines) if line["event"].startswith(("http.request", "job."))]
    created = httpx.post(edge.url + "/api/queue/create", content=body, timeout=10,
                         headers={"authorization": f"Bearer {API_TOKEN}", "content-type": "application/json"})
    assert created.status_code == 202, created.text  # and a whole body is still taken


def test_a_keep_alive_connection_idle_past_the_deadlines_between_requests_still_serves(edge, monkeypatch):
    """The deadlines cover a request's header block and body, not the time between requests (uvicorn's keep-alive
    timeout, 30 s, does)."""
    monkeypatch.setattr(local_server, "HEAD_TIMEOUT_S", 0.5, raising=False)
    monkeypatch.setattr(local_server, "BODY_TIMEOUT_S", 0.5, raising=False)
    body = b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "p"}}'
    create = (b"POST /api/queue/create HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + API_TOKEN.encode()
              + b"\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
    with _connect(edge) as sock:
        for request in (_get("/healthz"), create, _get("/healthz")):
            sock.sendall(request)
            assert _answer(sock)[0] in (200, 202)
            time.sleep(1.0)  # idle, past both deadlines


@pytest.mark.parametrize("upgrade", [("websocket", [("sec-websocket-version", "13"),
                                                    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")]),
                                     ("h2c", [("http2-settings", "AAMAAABkAAQAAP__")])])
def test_an_upgrade_request_is_answered_as_http_as_the_worker_answers_it_not_a_500(edge, log_lines, upgrade):
    """A WebSocket upgrade reached the app as a `websocket` scope, which it ignores: the client got uvicorn's
    plain-text 500 and the log an error line. The API offers no upgrade: the request is answered as any other."""
    protocol, fields = upgrade
    with _connect(edge) as sock:
        sock.sendall(_get("/api/workflows", ("connection", "upgrade"), ("upgrade", protocol), *fields))
        status, headers, body = _answer(sock)
        assert status == 200 and headers["content-type"] == "application/json", body
        assert json.loads(body)["workflows"]
        sock.sendall(_get("/healthz"))  # the connection still serves HTTP/1.1
        assert _answer(sock)[0] == 200
    assert [line["level"] for line in _events(log_lines) if line["event"] != "service.listening"] == ["info", "info"]


def test_the_header_limit_counts_each_field_line_as_sent(edge):
    # 2,000 fields of 64 bytes of name and value: 128,000 bytes, under the limit counted bare, 136,000 as sent (each
    # line's ": " and CRLF), over it: the local server must be the stricter of the two, as Cloudflare counts the wire.
    fields = [(f"x-h{i:04d}", "v" * 57) for i in range(2000)]
    _assert_json_refusal(_exchange(edge, _get("/api/workflows", *fields)), 431, "headers_too_large")
