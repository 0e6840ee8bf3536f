"""HTTP spoken byte by byte over a loopback socket, for the tests of a server's HTTP edge (what it answers to a request
no HTTP client would send): connect, send a request a byte at a time, read one answer or all until the server closes,
and the answers in such a stream, in order."""

from __future__ import annotations

import http.client
import io
import select
import socket
from urllib.parse import urlsplit


def connect(address: str | int, timeout_s: float = 20) -> socket.socket:
    """A connection to `address`: a base URL (http://HOST:PORT) or a port on 127.0.0.1."""
    if isinstance(address, int):
        return socket.create_connection(("127.0.0.1", address), timeout=timeout_s)
    url = urlsplit(address)
    return socket.create_connection((url.hostname, url.port), timeout=timeout_s)


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (b"<<still open>>" appended if it never does)."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except TimeoutError:
        return answer + b"<<still open>>"
    except ConnectionResetError:
        pass
    return answer


def one_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """The head and body of the next answer on a kept-alive connection (its body as long as its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def trickle(sock: socket.socket, request: bytes) -> int:
    """Sends `request` a byte at a time, each well within any per-read timeout, until the server answers or closes;
    returns how many bytes went out."""
    sent = 0
    try:
        for sent in range(1, len(request) + 1):
            sock.sendall(request[sent - 1:sent])
            if select.select([sock], [], [], 0.1)[0]:  # the server answered, or closed
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


class _Kept(io.BufferedReader):
    """One reader for every answer on the connection: http.client closes its reader after each answer."""

    def close(self) -> None:
        pass


class _Answers:
    def __init__(self, data: bytes) -> None:
        self.reader = _Kept(io.BytesIO(data))  # type: ignore[arg-type]

    def makefile(self, mode: str) -> _Kept:
        return self.reader


def exchange(port: int, raw: bytes, half_close: bool = False) -> list[tuple[int, dict[str, str], bytes]]:
    """Sends `raw` to 127.0.0.1:`port` (with `half_close`, then closes the sending side, as `nc -N` does) and reads
    until the server closes the connection: each answer's status, headers (names in lower case) and body, in order."""
    with connect(port) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    answers, sent = [], _Answers(data)
    while sent.reader.peek(1):
        reply = http.client.HTTPResponse(sent)  # type: ignore[arg-type]
        reply.begin()
        answers.append((reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()))
    return answers
