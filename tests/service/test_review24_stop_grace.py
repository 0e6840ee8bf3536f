"""A request on its way when the local server is told to stop is answered, not dropped.

A local deploy replaces the service process: the old one is told to stop while the new one already takes the
stack's socket. The old one may just have accepted a connection whose request has not been read yet (RunPod's
webhook sender connects anew for each delivery), or hold a keep-alive connection whose client is sending its next
request. uvicorn closed both at once, and the client saw "Server disconnected without sending a response" for a
webhook the stack never saw. Now such a connection has a moment for its request to come; it is answered with
`Connection: close`, and a connection that sends nothing in that moment is closed and does not hold the stop.
"""

from __future__ import annotations

import socket
import time

from test_review12_http_edge import edge  # noqa: F401 - the fixture: the local server in a thread

from service import local_server

_WAIT_S = 20  # a bound on a hung server, never a measurement
_HEALTH = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.005)


def _accepted(server: local_server.RunningServer, count: int) -> None:
    _until(lambda: len(server._server.server_state.connections) >= count, "the server to accept the connection")


def _told_to_stop(server: local_server.RunningServer) -> None:
    """Stop the server, and return once it has stopped accepting: uvicorn then, in the same step, tells each
    connection it has to shut down."""
    server._server.should_exit = True
    _until(lambda: server._server.servers and not any(s.is_serving() for s in server._server.servers),
           "the server to stop accepting")


def _one_answer(conn: socket.socket) -> bytes:
    """One whole answer on a kept-alive connection (its head, then Content-Length bytes of body)."""
    conn.settimeout(_WAIT_S)
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def _answer(conn: socket.socket) -> bytes:
    conn.settimeout(_WAIT_S)
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_a_request_on_a_connection_accepted_as_the_server_is_told_to_stop_is_answered(edge, monkeypatch) -> None:  # noqa: F811 - the fixture imported above
    monkeypatch.setattr(local_server, "STOP_GRACE_S", _WAIT_S)  # this test's thread may be slow to send it
    with socket.create_connection(("127.0.0.1", edge.port)) as conn:
        _accepted(edge, 1)
        _told_to_stop(edge)
        conn.sendall(_HEALTH)
        answer = _answer(conn)  # read to the end: the server closes it after this one answer
    assert answer.startswith(b"HTTP/1.1 200 "), answer or "closed with no answer"
    assert b"\r\nconnection: close\r\n" in answer.lower()
    edge._thread.join(_WAIT_S)
    assert not edge._thread.is_alive()


def test_the_next_request_on_a_kept_alive_connection_is_answered_once_and_the_connection_closed(edge, monkeypatch) -> None:  # noqa: F811 - the fixture imported above
    monkeypatch.setattr(local_server, "STOP_GRACE_S", _WAIT_S)
    with socket.create_connection(("127.0.0.1", edge.port)) as conn:
        conn.sendall(_HEALTH)
        first = _one_answer(conn)
        assert first.startswith(b"HTTP/1.1 200 ") and b"connection: close" not in first.lower()
        _told_to_stop(edge)
        conn.sendall(_HEALTH)
        answer = _answer(conn)
    assert answer.startswith(b"HTTP/1.1 200 "), answer or "closed with no answer"
    assert answer.count(b"HTTP/1.1 ") == 1 and b"\r\nconnection: close\r\n" in answer.lower()


def test_a_connection_that_sends_nothing_is_closed_and_does_not_hold_the_stop(edge) -> None:  # noqa: F811 - the fixture imported above
    with socket.create_connection(("127.0.0.1", edge.port)) as conn:
        _accepted(edge, 1)
        _told_to_stop(edge)
        assert _answer(conn) == b""  # closed without a word: no request came
        edge._thread.join(_WAIT_S)
        assert not edge._thread.is_alive()
