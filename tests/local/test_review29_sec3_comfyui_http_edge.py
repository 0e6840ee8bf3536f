"""Review 29 (sec3): the ComfyUI emulator's HTTP edge, as real ComfyUI's aiohttp answers it. Before, a
`Content-Length: -1` passed the size check and the body was read until the client closed (300 MiB taken in, no
answer), two lengths were taken as one, a chunked body was taken as empty (its chunks read as the next request), and
a client that sent half a request held a server thread forever (200 of them: 203 threads). Now a length aiohttp's
parser refuses is a plain-text 400, a chunked body is read as aiohttp reads it (bounded), and a request must arrive
within the read deadlines (a 408); an open /ws is long-lived by design and keeps no read deadline."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets.sync.client
from comfy_support import comfyui, prompt_graph
from raw_http import connect, one_answer, read_all, trickle

from goldgate.local.comfyui import ComfyUIEmulator, server


@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[ComfyUIEmulator]:
    with comfyui(tmp_path) as emulator:
        yield emulator


def _refused(comfy: ComfyUIEmulator, request: bytes) -> tuple[bytes, bytes]:
    with connect(comfy.port) as sock:
        sock.sendall(request)
        answer = read_all(sock)
    assert not answer.endswith(b"<<still open>>"), answer[:300]
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize("path", ["/prompt", "/upload/image"])
@pytest.mark.parametrize("length", ["-1", "+2", "2, 2", "0x2", "\u0662"])
def test_a_content_length_that_is_not_digits_is_a_plain_400_and_never_read_until_the_client_closes(
        comfy: ComfyUIEmulator, path: str, length: str) -> None:
    head, body = _refused(comfy, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{{}}".encode())
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert b"Content-Type: text/plain" in head and b"Connection: close" in head, head
    assert body.startswith(b"Invalid character in Content-Length:"), body


def test_a_content_length_past_64_bits_is_a_400_not_a_413_or_a_500(comfy: ComfyUIEmulator) -> None:
    for digits in (30, 5000):  # int() refuses a number of more than 4300 digits
        head, body = _refused(comfy, b"POST /prompt HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * digits
                              + b"\r\n\r\n{}")
        assert head.startswith(b"HTTP/1.1 400 ") and body.startswith(b"Content-Length overflow:"), (head, body[:200])


def test_two_content_lengths_are_a_400_even_when_they_agree(comfy: ComfyUIEmulator) -> None:
    for second in (b"3", b"2"):
        head, body = _refused(comfy, b"POST /prompt HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: "
                              + second + b"\r\n\r\n{}GET /queue HTTP/1.1\r\nHost: x\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 "), head
        assert body.startswith(b"Duplicate Content-Length:"), body
        assert b"HTTP/1.1" not in body  # the rest was not read as a second request


def test_a_length_with_a_transfer_encoding_or_a_coding_that_is_not_chunked_is_a_400(comfy: ComfyUIEmulator) -> None:
    head, body = _refused(comfy, b"POST /prompt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                 b"Content-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and body.startswith(b"Content-Length can't be present with"), body
    head, body = _refused(comfy, b"POST /prompt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}")
    assert head.startswith(b"HTTP/1.1 400 ") and body.startswith(b"Request has invalid `Transfer-Encoding`"), body


def _chunked(body: bytes, size: int = 100) -> bytes:
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nX-Trailer: t\r\n\r\n"


def test_a_chunked_prompt_is_read_as_comfyui_reads_it_and_the_connection_goes_on(comfy: ComfyUIEmulator) -> None:
    prompt = json.dumps({"prompt": prompt_graph(), "client_id": "c1"}).encode()
    with connect(comfy.port) as sock:
        sock.sendall(b"POST /prompt HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(prompt))
        head, body = one_answer(sock)
        assert head.startswith(b"HTTP/1.1 200 "), (head, body)
        accepted = json.loads(body)
        assert accepted["node_errors"] == {} and accepted["prompt_id"], accepted
        sock.sendall(b"GET /prompt HTTP/1.1\r\nHost: x\r\n\r\n")  # the same connection: no chunk taken for it
        head, body = one_answer(sock)
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert "exec_info" in json.loads(body)


def test_a_chunked_upload_is_stored(comfy: ComfyUIEmulator) -> None:
    boundary = b"b0undary"
    form = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="in.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + b"\x89PNG\r\n\x1a\n" + b"p" * 500 + b"\r\n--" + boundary + b"--\r\n")
    with connect(comfy.port) as sock:
        sock.sendall(b"POST /upload/image HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary="
                     + boundary + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(form, 64))
        head, body = one_answer(sock)
    assert head.startswith(b"HTTP/1.1 200 "), (head, body)
    assert json.loads(body)["name"] == "in.png"
    conn = http.client.HTTPConnection("127.0.0.1", comfy.port, timeout=10)
    try:
        conn.request("GET", "/view?filename=in.png&type=input")
        view = conn.getresponse()
        assert view.status == 200 and view.read() == b"\x89PNG\r\n\x1a\n" + b"p" * 500
    finally:
        conn.close()


def test_a_chunked_body_over_the_limit_is_a_413_before_its_data_is_read(comfy: ComfyUIEmulator,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "MAX_BODY_BYTES", 1000)
    # The chunk's size line alone: its data never comes, and need not.
    head, body = _refused(comfy, b"POST /prompt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 b"200\r\n" + b"a" * 0x200 + b"\r\n400\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert body == b"Maximum request body size 1000 exceeded"
    head, body = _refused(comfy, b"POST /prompt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and body.startswith(b"Invalid character in chunk size"), body


def test_a_get_with_a_body_is_answered_once_and_its_body_never_read_as_a_request(comfy: ComfyUIEmulator) -> None:
    smuggled = b"POST /queue HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\n{\"clear\": true}"
    with connect(comfy.port) as sock:
        sock.sendall(b"GET /queue HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(smuggled) + smuggled)
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1 and not answer.endswith(b"<<still open>>"), answer


def test_a_body_that_stops_arriving_gets_a_plain_408_and_its_connection_closed(
        comfy: ComfyUIEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server._Handler, "request_timeout_s", 0.5)
    with connect(comfy.port) as sock:
        sock.sendall(b"POST /prompt HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n" + b'{"prompt": {')
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert not answer.endswith(b"<<still open>>")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Connection: close" in head and b"Content-Type: text/plain" in head, head
    assert body == b"408: Request Timeout"
    assert comfy.backend.remaining() == 0  # the half prompt queued nothing


def test_a_request_trickled_a_byte_at_a_time_is_cut_off_before_it_is_all_sent(
        comfy: ComfyUIEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each byte comes well within any per-read timeout: only a deadline for the whole request ends it."""
    monkeypatch.setattr(server._Handler, "request_timeout_s", 0.5)
    request = b"GET /system_stats HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 60 + b"\r\n\r\n"
    with connect(comfy.port) as sock:
        sent = trickle(sock, request)
        answer = read_all(sock)
    assert sent < len(request), answer[:300]
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert not answer.endswith(b"<<still open>>")


def test_a_connection_that_begins_no_request_is_closed_without_an_answer(
        comfy: ComfyUIEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server._Handler, "idle_timeout_s", 0.5)
    with connect(comfy.port) as idle, connect(comfy.port) as kept:
        kept.sendall(b"GET /queue HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _ = one_answer(kept)
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert read_all(idle) == b""  # never began a request: closed, nothing said
        assert read_all(kept) == b""  # idle after its answer: the same


def test_requests_that_keep_to_the_deadlines_are_served_on_a_kept_alive_connection(
        comfy: ComfyUIEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server._Handler, "request_timeout_s", 0.5)
    conn = http.client.HTTPConnection("127.0.0.1", comfy.port, timeout=10)
    try:
        for _ in range(2):
            conn.request("POST", "/prompt", json.dumps({"prompt": prompt_graph()}), {"Content-Type": "application/json"})
            answer = conn.getresponse()
            assert answer.status == 200 and "prompt_id" in json.loads(answer.read())
            time.sleep(1.0)  # idle between requests, past the request deadline: not counted against the next
    finally:
        conn.close()


def test_an_open_websocket_is_not_cut_by_the_read_deadlines(comfy: ComfyUIEmulator,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """/ws is long-lived by design: quiet for longer than both deadlines, it still hears its prompt's events."""
    monkeypatch.setattr(server._Handler, "idle_timeout_s", 0.3)
    monkeypatch.setattr(server._Handler, "request_timeout_s", 0.3)
    with websockets.sync.client.connect(f"ws://127.0.0.1:{comfy.port}/ws?clientId=w1", ping_interval=None) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "status"
        time.sleep(1.5)  # five times either deadline, nothing sent either way
        conn = http.client.HTTPConnection("127.0.0.1", comfy.port, timeout=10)
        try:
            conn.request("POST", "/prompt", json.dumps({"prompt": prompt_graph(), "client_id": "w1"}),
                         {"Content-Type": "application/json"})
            prompt_id = json.loads(conn.getresponse().read())["prompt_id"]
        finally:
            conn.close()
        while True:
            message = json.loads(ws.recv(timeout=30))
            if message["type"] == "executing" and message["data"]["node"] is None:
                break
        assert message["data"]["prompt_id"] == prompt_id
        ws.ping()  # and the client can still talk to it
