"""The local edge's timers blame a client only for its own slowness: not for the time the server spends answering a
request before (a pipelined request's head or body waits, its reading paused, while the first is answered), and not
for a body the app chose not to read whole while its answer streams out."""

from __future__ import annotations

import http.client
import io
import json
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from service_testkit import API_TOKEN, BUCKET, count_jobs, create_head, edge_in_thread

from service import local_server

_BODY = b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse at dusk"}}'
_WAIT_S = 20  # a bound on a hung server, never a measurement
_BODY_DEADLINE_S = 3.0  # for a download's answer to begin within, however loaded the machine


class _HeldRunPod:
    """A RunPod /run that answers only once the test lets it: the first create's handler runs as long as the
    test needs."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        held = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                held.entered.set()
                held.release.wait(_WAIT_S)
                body = json.dumps({"id": f"{uuid.uuid4()}-u1", "status": "IN_QUEUE"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}/v2/ep-test"

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def held_runpod() -> Iterator[_HeldRunPod]:
    held = _HeldRunPod()
    yield held
    held.stop()


@pytest.fixture
def held_edge(tmp_path, moto_endpoint, held_runpod, log_lines) -> Iterator[local_server.RunningServer]:
    with edge_in_thread(tmp_path, moto_endpoint, held_runpod.base, log_lines) as server:
        yield server
        held_runpod.release.set()


@pytest.fixture
def small_body_edge(tmp_path, moto_endpoint, fake_runpod, log_lines) -> Iterator[local_server.RunningServer]:
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines, max_body_bytes=100) as server:
        yield server


class _Unclosed(io.BufferedReader):
    def close(self) -> None:  # http.client closes its file after each answer: the next one is read from it too
        pass


class _Connection:
    """One buffered reader for the socket, so answers that arrive together are read one after the other."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = _Unclosed(socket.SocketIO(sock, "rb"))

    def makefile(self, mode: str) -> Any:
        return self.file

    def answer(self) -> tuple[int, bytes]:
        reply = http.client.HTTPResponse(self)  # type: ignore[arg-type]
        reply.begin()
        return reply.status, reply.read()


def _refusals(log_lines) -> list[str]:
    return [line.get("reason") for line in map(json.loads, list(log_lines)) if line["event"] == "service.server_log"]


def test_a_pipelined_request_head_is_not_timed_out_while_the_answer_before_it_is_still_being_made(
        held_edge, held_runpod, log_lines, monkeypatch):
    """The next request's head deadline falls due while the first request's handler still runs (RunPod is slow):
    that is the server's time, not the client's, and neither request may be dropped for it."""
    monkeypatch.setattr(local_server, "HEAD_TIMEOUT_S", 0.2, raising=False)
    with socket.create_connection(("127.0.0.1", held_edge.port), timeout=_WAIT_S) as sock:
        conn = _Connection(sock)
        # the first request whole, and the start of a second one's head behind it (pipelined)
        sock.sendall(create_head(len(_BODY)) + _BODY + b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        assert held_runpod.entered.wait(_WAIT_S), "the first request never reached RunPod"
        # Five head deadlines' worth while the first request waits on RunPod: the server must neither answer nor
        # close the connection in that time.
        assert not select.select([sock], [], [], 1.0)[0], "the server closed a connection whose answer it owed"
        sock.sendall(b"\r\n")  # the second head completes while the first request is still being answered
        held_runpod.release.set()
        status, body = conn.answer()
        assert status == 202, body
        status, body = conn.answer()
        assert status == 200, body
    assert count_jobs(held_edge) == 1
    assert _refusals(log_lines) == []


def test_a_pipelined_body_held_back_by_the_server_is_not_refused_as_too_slow(held_edge, held_runpod, log_lines,
                                                                             monkeypatch):
    """uvicorn stops reading while a pipelined request waits for the answer before it: the waiting body's rate is
    not the client's to answer for (the rest of it sits unread in the socket), however long the first answer
    takes."""
    monkeypatch.setattr(local_server, "BODY_GRACE_S", 0.2, raising=False)
    monkeypatch.setattr(local_server, "BODY_MIN_RATE_BPS", 1000, raising=False)
    with socket.create_connection(("127.0.0.1", held_edge.port), timeout=_WAIT_S) as sock:
        conn = _Connection(sock)
        sock.sendall(create_head(len(_BODY)) + _BODY)
        assert held_runpod.entered.wait(_WAIT_S), "the first request never reached RunPod"
        # The first request has its body and waits on RunPod; a second create's head and 10 bytes of its body
        # come now: the server queues it and stops reading.
        sock.sendall(create_head(len(_BODY)) + _BODY[:10])
        # Five graces while the server reads nothing: no refusal, no close.
        assert not select.select([sock], [], [], 1.0)[0], "the server refused or closed while it was not reading"
        sock.sendall(_BODY[10:])  # the rest, waiting in the socket until the server reads again
        held_runpod.release.set()
        first, second = conn.answer(), conn.answer()
    assert [first[0], second[0]] == [202, 202], (first, second)
    assert count_jobs(held_edge) == 2
    assert _refusals(log_lines) == []


@pytest.mark.parametrize("timer", ["BODY_GRACE_S", "BODY_TIMEOUT_S"])  # the rate rule, the whole-body deadline
def test_a_pipelined_body_is_not_refused_ahead_of_the_answer_owed_to_the_request_before_it(
        held_edge, held_runpod, log_lines, monkeypatch, timer):
    """A client pipelines a second create, its body in pieces, behind a first one that waits on RunPod. Answers
    go out in request order: a 408 for the second body written while the first is still owed is read by the
    client as the first request's answer (it was refused, so retried), though its job was created, and the
    connection closing loses the first answer."""
    monkeypatch.setattr(local_server, timer, 0.2, raising=False)
    monkeypatch.setattr(local_server, "BODY_MIN_RATE_BPS", 1000, raising=False)
    with socket.create_connection(("127.0.0.1", held_edge.port), timeout=_WAIT_S) as sock:
        conn = _Connection(sock)
        # both heads at once, the second body's first 10 bytes behind them
        sock.sendall(create_head(len(_BODY)) + _BODY + create_head(len(_BODY)) + _BODY[:10])
        assert held_runpod.entered.wait(_WAIT_S), "the first request never reached RunPod"
        assert not select.select([sock], [], [], 1.0)[0], "the server answered before the first request's answer"
        sock.sendall(_BODY[10:])
        held_runpod.release.set()
        first, second = conn.answer(), conn.answer()
    assert [first[0], second[0]] == [202, 202], (first, second)
    assert count_jobs(held_edge) == 2
    assert _refusals(log_lines) == []


def test_a_download_streaming_out_is_not_cut_by_the_deadline_of_a_body_the_app_left_unread(
        small_body_edge, s3, log_lines, monkeypatch):
    """A result download sent with a chunked body over max_body_bytes: the app stops reading the body and streams
    the answer (then closes, as it did not read the body). The body deadline falling due while the answer streams
    must not write a 408 into the middle of the download."""
    # The deadline runs from the request's arrival, so it must fall due after the answer has begun: long enough for
    # the answer to start on a loaded machine (a 408 ahead of it is right: the body never came whole).
    monkeypatch.setattr(local_server, "BODY_TIMEOUT_S", _BODY_DEADLINE_S, raising=False)
    key = "results/" + "d" * 32 + "/0.png"
    size = 16 * 1024 * 1024  # far more than the socket buffers hold: the answer is still going out for a while
    payload = b"\x89PNG" + b"\0" * (size - 4)
    s3.put_object(Bucket=BUCKET, Key=key, Body=payload, ContentType="image/png")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(_WAIT_S)
        sock.connect(("127.0.0.1", small_body_edge.port))
        sock.sendall(f"GET /api/result/{key} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {API_TOKEN}\r\n"
                     "transfer-encoding: chunked\r\n\r\n".encode() + b"c8\r\n" + b"x" * 200 + b"\r\n")
        sent = time.monotonic()
        assert select.select([sock], [], [], _WAIT_S)[0], "no answer came"  # its head, left unread
        begun_s = time.monotonic() - sent
        # The client reads nothing until the body deadline has fallen due while the answer streams (it waits in the
        # server's buffers), then all of it.
        time.sleep(max(0.0, sent + _BODY_DEADLINE_S + 0.5 - time.monotonic()))
        received = bytearray()
        while chunk := sock.recv(1 << 20):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), (head[:200], f"the answer began {begun_s:.2f} s after the request")
    assert b"content-length: %d" % size in head.lower()
    assert len(body) == size and body == payload, f"the download was cut or garbled ({len(body)} bytes)"
    assert _refusals(log_lines) == []
