"""The HTTP plumbing the local stack's emulators share: a server loop that sleeps while nobody calls, and a
connection's reads under deadlines, so a client that sends half a request cannot hold a server thread forever.

socketserver's `serve_forever(poll_interval)` wakes every `poll_interval` only to see whether `shutdown()` was called,
so its owner had to choose between CPU and a slow stop: the RunPod emulator polled 20 times a second (0.05 s, or every
`goldgate down` waited out the poll) for as long as the stack lived, and each worker's ComfyUI emulator 10 times. Here
`shutdown()` wakes the loop itself (a byte on a socket pair the loop also waits on): an idle server uses no CPU, and
a stop is seen at once.
"""

from __future__ import annotations

import io
import selectors
import socket
import threading
import time
from typing import Any

# What socketserver itself waits with: poll(2) where there is one.
_Selector = selectors.PollSelector if hasattr(selectors, "PollSelector") else selectors.SelectSelector


class WokenOnShutdown:
    """A mixin for a socketserver server (before it in the bases): `serve_forever` waits for a connection or
    `shutdown()`, never on a timer. As with socketserver, `shutdown()` returns once the loop has ended (called before
    the loop starts, once it has started and ended at once): call it only while a thread runs, or is about to run,
    `serve_forever`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._shutdown_requested = False
        self._loop_ended = threading.Event()  # set as the loop ends: shutdown() waits for it, as socketserver's does
        try:
            super().__init__(*args, **kwargs)
        except BaseException:  # a port in use: no server, and no pair left open either
            self._wake_r.close()
            self._wake_w.close()
            raise

    def serve_forever(self, poll_interval: float | None = None) -> None:  # poll_interval: taken, not needed
        try:
            with _Selector() as selector:
                selector.register(self, selectors.EVENT_READ)  # type: ignore[arg-type]
                selector.register(self._wake_r, selectors.EVENT_READ)
                while not self._shutdown_requested:
                    ready = selector.select()
                    if self._shutdown_requested:
                        break
                    if any(key.fileobj is self for key, _ in ready):
                        self._handle_request_noblock()  # type: ignore[attr-defined]
                    self.service_actions()  # type: ignore[attr-defined]
        finally:
            self._loop_ended.set()

    def shutdown(self) -> None:
        self._shutdown_requested = True
        try:
            self._wake_w.send(b"\0")
        except OSError:  # closed (server_close came first) or full: the loop is gone or already woken
            pass
        self._loop_ended.wait()

    def server_close(self) -> None:
        super().server_close()  # type: ignore[misc]
        self._wake_r.close()
        self._wake_w.close()


class DeadlineReader(io.RawIOBase):
    """A connection's reads, each under the time its request has left: `idle_s` for a request's first byte, then
    `request_s` from that byte on (a socket timeout per read alone lets a trickle hold on forever). `open_end()`
    lifts both for as long as the connection lives: an open websocket is quiet for as long as it has nothing to say."""

    def __init__(self, sock: socket.socket, idle_s: float, request_s: float) -> None:
        super().__init__()
        self._sock = sock
        self._idle_s, self._request_s = idle_s, request_s
        self.deadline: float | None = None  # set by a request's first byte; None between requests
        self.expired = False  # a read timed out with a request begun: it is owed a 408
        self._open_ended = False

    def readable(self) -> bool:
        return True

    def next_request(self) -> None:
        """Between requests: the next one's deadline starts with its first byte."""
        self.deadline, self.expired = None, False

    def open_end(self) -> None:
        self.deadline, self._open_ended = None, True

    def readinto(self, buffer: Any) -> int:
        if self._open_ended:
            while True:
                try:
                    return self._sock.recv_into(buffer)
                except TimeoutError:
                    continue  # the socket's timeout bounds the connection's writes; its reads wait as long as it lives
        begun = self.deadline is not None
        left = self.deadline - time.monotonic() if self.deadline is not None else self._idle_s
        try:
            if left <= 0:
                raise TimeoutError("the request did not arrive in time")
            self._sock.settimeout(left)
            n = self._sock.recv_into(buffer)
        except TimeoutError:
            self.expired = begun
            raise
        if n and not begun:
            self.deadline = time.monotonic() + self._request_s
        return n


class ReadDeadlines:
    """A mixin for an http.server handler (before BaseHTTPRequestHandler in the bases): a connection that begins no
    request within `idle_timeout_s` is closed, silently; a request must arrive whole, header block and body, within
    `request_timeout_s` of its first byte, else `timed_out()` answers it (a 408, in the emulator's own wire format) and
    the connection is closed. http.server alone closes a connection whose read timed out without a word. The handler
    bounds its writes with `write_timeout_s` (`self.connection.settimeout(...)` before it answers)."""

    idle_timeout_s: float
    request_timeout_s: float
    write_timeout_s: float
    reader: DeadlineReader

    def setup(self) -> None:
        super().setup()  # type: ignore[misc]
        self.reader = DeadlineReader(self.connection, self.idle_timeout_s,  # type: ignore[attr-defined]
                                     self.request_timeout_s)
        self.rfile = io.BufferedReader(self.reader)

    def handle_one_request(self) -> None:
        self.reader.next_request()
        # Nothing of the last request's: a 408 owed before this one's request line is in must not name that one.
        self.command, self.path, self.request_version, self.requestline = "", "", "HTTP/1.1", ""
        super().handle_one_request()  # type: ignore[misc]
        if self.reader.expired:
            self.answer_timed_out()

    def answer_timed_out(self) -> None:
        """The request whose deadline passed gets `timed_out()`'s answer, and its connection is closed."""
        self.reader.expired = False
        self.close_connection = True
        try:
            self.timed_out()
        except OSError:  # the client is gone too, or takes no answer
            pass

    def timed_out(self) -> None:
        """Answers a request that did not arrive whole in time: each emulator's 408, as its vendor words it."""
        raise NotImplementedError
