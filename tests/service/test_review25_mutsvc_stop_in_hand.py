"""A request the local server has in hand when it is told to stop (its head read, its body still coming) is
answered with `Connection: close`, and the server then stops: a kept-alive connection would hold the stop
(a deploy replacing the service) for as long as its client kept it open."""

from __future__ import annotations

import socket

from test_review12_http_edge import edge  # noqa: F401 - the fixture: the local server in a thread
from test_review24_stop_grace import _WAIT_S, _accepted, _answer, _told_to_stop, _until


def test_a_request_in_hand_as_the_server_is_told_to_stop_is_answered_and_its_connection_closed(edge) -> None:  # noqa: F811 - the fixture imported above
    with socket.create_connection(("127.0.0.1", edge.port)) as conn:
        conn.sendall(b"POST /api/queue/create HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: 2\r\n\r\n{")
        _accepted(edge, 1)
        _until(lambda: any(getattr(c, "cycle", None) is not None for c in edge._server.server_state.connections),
               "the server to read the request's head")
        _told_to_stop(edge)
        conn.sendall(b"}")
        answer = _answer(conn)  # read to the end: the server closes it after this one answer
    assert answer.startswith(b"HTTP/1.1 401 "), answer or "closed with no answer"
    assert answer.count(b"HTTP/1.1 ") == 1 and b"\r\nconnection: close\r\n" in answer.lower(), answer
    edge._thread.join(_WAIT_S)
    assert not edge._thread.is_alive()
