"""An answer the local server gives before it has read a request's body (a 401 to an anonymous upload, a 413 over the
body limit) reaches a client that is still sending that body, as a browser or Node's fetch does.

The server stopped reading at the body limit, answered with `Connection: close` and closed the socket with the rest
of the body unread or still coming: the kernel then resets the connection, and a client still writing its body got
ECONNRESET (Node's fetch: `TypeError: fetch failed`, 6 tries in 10) instead of the answer. It now half-closes once
the answer is out and reads and drops what still comes (nginx's lingering close), within bounds: a client that
keeps sending is cut off, and a stop does not wait for a lingering connection. Raw bytes over loopback sockets to
the in-process server (uvicorn with EdgeProtocol)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from service_testkit import API_TOKEN, edge_in_thread

from service import local_server

_WAIT_S = 20  # a bound on a hung server or client, never a measurement
_CHUNK = 32 * 1024
_PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def edge(tmp_path, moto_endpoint, fake_runpod, log_lines) -> Iterator[local_server.RunningServer]:
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines) as server:
        yield server


def _upload_head(length: int, token: str | None = None) -> bytes:
    auth = b"" if token is None else b"authorization: Bearer " + token.encode() + b"\r\n"
    return (b"POST /api/inputs HTTP/1.1\r\nhost: x\r\n" + auth
            + b"content-type: image/png\r\ncontent-length: %d\r\n\r\n" % length)


def _create_head(length: int) -> bytes:
    return (b"POST /api/queue/create HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + API_TOKEN.encode()
            + b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % length)


class _SteadySender(threading.Thread):
    """Sends a head and then `length` body bytes in steady chunks with short pauses, as a browser or Node uploads a
    body: it goes on sending after the answer has come, until the body is out. `error` is what sending met."""

    def __init__(self, sock: socket.socket, head: bytes, length: int, pause_s: float = 0.001,
                 forever: bool = False) -> None:
        super().__init__(daemon=True)
        self.sock, self.head, self.length, self.pause_s, self.forever = sock, head, length, pause_s, forever
        self.sent = 0
        self.error: OSError | None = None

    def run(self) -> None:
        chunk = _PNG + b"\0" * (_CHUNK - len(_PNG))
        try:
            self.sock.sendall(self.head)
            while self.forever or self.sent < self.length:
                piece = chunk if self.forever else chunk[:self.length - self.sent]
                self.sock.sendall(piece)
                self.sent += len(piece)
                time.sleep(self.pause_s)
        except OSError as exc:
            self.error = exc


def _read_answer_and_end(sock: socket.socket) -> tuple[tuple[int, dict[str, str], bytes], bytes]:
    """The answer, then what follows it until the server's side ends (b"" for a clean FIN)."""
    reply = http.client.HTTPResponse(sock)
    reply.begin()
    answer = reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    return answer, sock.recv(65536)


def _early_answer(server: local_server.RunningServer, head: bytes, length: int) -> tuple[int, dict[str, str], bytes]:
    """Send `head` and a `length`-byte body steadily while reading the answer: the answer, after asserting that the
    client read it whole, saw the server's side end with a FIN, and sent its whole body without a reset."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=_WAIT_S) as sock:
        sender = _SteadySender(sock, head, length)
        sender.start()
        try:
            answer, after = _read_answer_and_end(sock)
        except OSError as exc:  # ConnectionResetError: the answer was lost to the reset
            sender.join(_WAIT_S)
            raise AssertionError(f"the client could not read the answer: {exc!r} (sent {sender.sent} of {length} "
                                 f"body bytes; sending met {sender.error!r})") from None
        sender.join(_WAIT_S)
        assert not sender.is_alive(), "the client's body never went out"
        assert after == b"", f"more than one answer on a closed connection: {after[:200]!r}"
        assert sender.error is None, (f"the connection was reset while the client sent its body ({sender.sent} of "
                                      f"{length} bytes out): {sender.error!r}")
        sock.shutdown(socket.SHUT_WR)
    return answer


@pytest.mark.parametrize("length", [4 * 1024 * 1024, 20 * 1024 * 1024 + 1], ids=["4MiB", "20MiB+1"])
def test_an_anonymous_upload_sent_steadily_reads_its_401_every_time(edge, length):
    for attempt in range(20 if length < 8 * 1024 * 1024 else 5):
        status, headers, body = _early_answer(edge, _upload_head(length), length)
        assert (status, headers["connection"]) == (401, "close"), (attempt, status, body)
        assert json.loads(body)["error"]["code"] == "unauthorized", body


def test_a_create_over_the_body_limit_sent_steadily_reads_its_413_every_time(edge):
    for attempt in range(20):
        status, headers, body = _early_answer(edge, _create_head(4 * 1024 * 1024), 4 * 1024 * 1024)
        assert (status, headers["connection"]) == (413, "close"), (attempt, status, body)
        assert json.loads(body)["error"]["code"] == "body_too_large", body


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.01)


def _connections(server: local_server.RunningServer) -> int:
    return len(server._server.server_state.connections)


def _answered_while_sending(sender: _SteadySender, sock: socket.socket) -> float:
    """Start `sender`, read the 401 whole and the server's FIN after it: when (time.monotonic) it came."""
    sender.start()
    (status, _, body), after = _read_answer_and_end(sock)
    assert (status, json.loads(body)["error"]["code"], after) == (401, "unauthorized", b""), (status, body, after)
    return time.monotonic()


def test_after_the_early_answer_the_client_closing_its_side_ends_the_connection(edge, monkeypatch):
    monkeypatch.setattr(local_server, "LINGER_TIMEOUT_S", 600, raising=False)  # only the client's close ends it
    monkeypatch.setattr(local_server, "LINGER_TIME_S", 600, raising=False)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=_WAIT_S) as sock:
        sender = _SteadySender(sock, _upload_head(1024 * 1024), 1024 * 1024)
        _answered_while_sending(sender, sock)
        sender.join(_WAIT_S)
        assert sender.error is None, f"the connection was reset while the client sent its body: {sender.error!r}"
        assert _connections(edge) == 1, "the server did not wait for the rest of the body"
        sock.shutdown(socket.SHUT_WR)
        _until(lambda: _connections(edge) == 0, "the server to close the connection the client closed")


def test_a_client_that_keeps_sending_after_the_answer_is_cut_off_after_the_byte_bound(edge, monkeypatch):
    monkeypatch.setattr(local_server, "LINGER_BYTES", 2 * 1024 * 1024, raising=False)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=_WAIT_S) as sock:
        sender = _SteadySender(sock, _upload_head(1 << 40), 0, pause_s=0, forever=True)
        _answered_while_sending(sender, sock)
        sender.join(_WAIT_S)
        assert not sender.is_alive(), "a client sending for ever was never cut off"
        assert isinstance(sender.error, (ConnectionResetError, BrokenPipeError)), sender.error
        # cut off once the server had dropped its bound's worth, not at the answer (64 KiB read, the rest reset)
        assert sender.sent > 2 * 1024 * 1024, sender.sent
    _until(lambda: _connections(edge) == 0, "the server to let the connection go")


def test_a_client_that_keeps_sending_after_the_answer_is_cut_off_after_the_time_bound(edge, monkeypatch):
    monkeypatch.setattr(local_server, "LINGER_TIME_S", 1.5, raising=False)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=_WAIT_S) as sock:
        sender = _SteadySender(sock, _upload_head(1 << 40), 0, pause_s=0.02, forever=True)  # ~1.6 MB/s
        answered = _answered_while_sending(sender, sock)
        sender.join(_WAIT_S)
        cut = time.monotonic()
        assert not sender.is_alive(), "a client sending for ever was never cut off"
        assert isinstance(sender.error, (ConnectionResetError, BrokenPipeError)), sender.error
        assert cut - answered > 1.0, f"cut off {cut - answered:.2f} s after the answer, before the time bound"
    _until(lambda: _connections(edge) == 0, "the server to let the connection go")


def test_a_client_that_goes_quiet_after_the_answer_without_closing_is_let_go(edge, monkeypatch):
    monkeypatch.setattr(local_server, "LINGER_TIMEOUT_S", 1.0, raising=False)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=_WAIT_S) as sock:
        # declares 4 MiB, sends 1 MiB steadily, then neither sends nor closes
        sender = _SteadySender(sock, _upload_head(4 * 1024 * 1024), 1024 * 1024)
        _answered_while_sending(sender, sock)
        sender.join(_WAIT_S)
        assert sender.error is None, f"the connection was reset while the client sent its body: {sender.error!r}"
        quiet = time.monotonic()
        _until(lambda: _connections(edge) == 0, "the server to let a quiet connection go")
        assert time.monotonic() - quiet > 0.5, "let go before the client had been quiet for the bound"


def test_a_stop_while_a_connection_lingers_is_prompt(edge):
    with socket.create_connection(("127.0.0.1", edge.port), timeout=_WAIT_S) as sock:
        sender = _SteadySender(sock, _upload_head(1 << 40), 0, pause_s=0.02, forever=True)
        answered = _answered_while_sending(sender, sock)
        time.sleep(0.3)
        assert sender.is_alive() and sender.error is None, f"not lingering: {sender.error!r}"
        stopping = time.monotonic()
        edge._server.should_exit = True
        edge._thread.join(_WAIT_S)
        assert not edge._thread.is_alive(), "the server did not stop"
        # LINGER_TIME_S (30 s) would still have let the client send; the stop cut it at once
        assert time.monotonic() - stopping < 5, f"the stop took {time.monotonic() - stopping:.1f} s"
        sender.join(_WAIT_S)
        assert isinstance(sender.error, (ConnectionResetError, BrokenPipeError)), sender.error
        assert stopping - answered < local_server.LINGER_TIME_S
