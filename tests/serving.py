"""Stand-in HTTP peers for tests, on 127.0.0.1 and a free port: a handler class served from a thread, a peer
whose body never ends, and one that sends its answer a byte at a time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serves `handler`; yields the base URL (http://127.0.0.1:<port>) and stops the server when the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)



def wait_until(predicate: Callable[[], object], what: str, wait_s: float, why: str) -> None:
    """Wait for predicate() to hold, up to `wait_s` (a bound on a wait, not a speed bound); fail naming `what` and
    `why` it never came."""
    pause = threading.Event()
    for _ in range(int(wait_s / 0.05)):
        if predicate():
            return
        pause.wait(0.05)
    assert predicate(), f"gave up waiting for {what} after {wait_s:g} s: {why}"

class EndlessBody:
    """A 127.0.0.1 server answering every request with `status` and a chunked body that goes on until the
    client hangs up, or `cap` bytes were sent (so a client that reads everything still finishes)."""

    def __init__(self, status: int, cap: int) -> None:
        self.status, self.cap = status, cap
        self.sent = 0
        self.finished = False  # True when the whole `cap` went out: the client read it all
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(f"HTTP/1.1 {self.status} Oops\r\ncontent-type: text/html\r\n"
                         "transfer-encoding: chunked\r\n\r\n".encode())
            chunk = b"<p>" + b"x" * 65530 + b"</p>"
            try:
                while self.sent < self.cap:
                    conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                    self.sent += len(chunk)
                conn.sendall(b"0\r\n\r\n")
                self.finished = True
            except OSError:
                pass  # the client hung up

    def close(self) -> None:
        self._server.close()
        self._thread.join(timeout=30)


class Trickle:
    """A 127.0.0.1 server answering every request with `head` at once (by default a 200 with a JSON Content-Type
    and the body's length), then `body` one byte every `interval_s`, until the client hangs up or the body is out.
    `requests` counts the requests, `finished` says a whole body went out (a client read it to its end)."""

    def __init__(self, body: bytes, head: bytes | None = None, interval_s: float = 0.02) -> None:
        self.body, self.interval_s = body, interval_s
        self.head = head if head is not None else (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                                   b"content-length: %d\r\n\r\n" % len(body))
        self.requests = 0
        self.finished = False
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                self.requests += 1
                try:
                    conn.sendall(self.head)
                    for byte in self.body:
                        conn.sendall(bytes([byte]))
                        time.sleep(self.interval_s)
                    self.finished = True
                except OSError:
                    pass  # the client hung up

    def close(self) -> None:
        self._server.close()
        self._thread.join(timeout=10)
