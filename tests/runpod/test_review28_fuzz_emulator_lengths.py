"""A request to the RunPod emulator with two different Content-Length headers is refused (400) and its connection
closed: whichever length were taken, the rest of the body would be read as a second request, answered on the same
connection (request smuggling, RFC 9112 6.3: such a message is unrecoverable)."""

from __future__ import annotations

import socket

from emulator_harness import API_KEY


def _exchange(base_url: str, request: bytes) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(65536):  # until the emulator closes the connection
                answer += chunk
        except TimeoutError:  # a connection kept open: what came so far is the answer
            pass
    return answer


def test_two_different_content_lengths_are_refused_and_nothing_hidden_in_the_body_runs(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint()
    auth = b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
    hidden = b"POST /v2/" + ep.id.encode() + b"/run HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 14\r\n\r\n" \
             + b'{"input": {}}\n'
    body = b"{}" + hidden
    request = (b"POST /v2/" + ep.id.encode() + b"/purge-queue HTTP/1.1\r\nHost: x\r\n" + auth
               + b"Content-Length: 2\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    answer = _exchange(stack.emulator.base_url, request)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # the hidden /run was not read as a request
    assert b"Content-Length" in answer.split(b"\r\n\r\n", 1)[1]  # the refusal names the header to fix


def test_a_repeated_equal_content_length_is_taken(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint()
    auth = b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
    request = (b"POST /v2/" + ep.id.encode() + b"/purge-queue HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth
               + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}")
    assert _exchange(stack.emulator.base_url, request).startswith(b"HTTP/1.1 200 ")
