"""A connection that could not be opened in time (the SYN went unanswered) sent nothing, so even POST /run is
safe to try again: a blip in the network must not fail a job submit as 'may or may not have been applied'."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from emulator_harness import API_KEY

from goldgate.runpod import DataPlaneClient, RetryPolicy, RunPodUnavailable

FAST = RetryPolicy(attempts=3, backoff_s=0.01, max_backoff_s=0.02)


class Unanswered:
    """A loopback port whose accept queue is full: the kernel drops every further SYN, so a client's connect
    times out, as it does when a SYN is lost on the way. `open_to(port)` then lets connections through to a
    real server on `port`."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)  # room for one connection not yet accepted
        self.port = self.listener.getsockname()[1]
        self.filler = socket.create_connection(("127.0.0.1", self.port))  # takes that room
        self._sockets: list[socket.socket] = [self.filler]
        self._open = False

    def open_to(self, target_port: int) -> None:
        if self._open:
            return
        self._open = True
        self.listener.accept()[0].close()  # the filler leaves the queue: new connections are taken again
        threading.Thread(target=self._forward, args=(target_port,), daemon=True).start()

    def _forward(self, target_port: int) -> None:
        while True:
            try:
                inbound, _ = self.listener.accept()
            except OSError:
                return
            outbound = socket.create_connection(("127.0.0.1", target_port))
            self._sockets += [inbound, outbound]
            for a, b in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        for s in [self.listener, *self._sockets]:
            with contextlib.suppress(OSError):
                s.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def unanswered() -> Iterator[Unanswered]:
    gate = Unanswered()
    yield gate
    gate.close()


def test_a_run_whose_connection_timed_out_is_sent_again_and_queued_once(flaky, unanswered) -> None:
    rp = flaky({"/v2/ep1/run": [(200, {"id": "j1", "status": "IN_QUEUE"}, {})]})
    client = DataPlaneClient(API_KEY, "ep1", f"http://127.0.0.1:{unanswered.port}/v2", retry=FAST, timeout_s=0.5)
    slept: list[float] = []

    def back_off(seconds: float) -> None:
        slept.append(seconds)
        unanswered.open_to(rp.server.server_address[1])

    client._http._sleep = back_off
    with client:
        job = client.run({"prompt": "a lighthouse"})
    assert (job.id, job.status) == ("j1", "IN_QUEUE")
    assert len(slept) == 1 and len(rp.calls) == 1


def test_a_connection_that_never_opens_says_so_without_doubt_about_the_run(unanswered) -> None:
    client = DataPlaneClient(API_KEY, "ep1", f"http://127.0.0.1:{unanswered.port}/v2", retry=FAST, timeout_s=0.3)
    client._http._sleep = lambda seconds: None
    with client, pytest.raises(RunPodUnavailable) as err:
        client.run({"prompt": "a lighthouse"})
    message = str(err.value)
    assert f"cannot connect to the RunPod serverless endpoint at http://127.0.0.1:{unanswered.port}" in message
    assert "after 3 attempts" in message and "may or may not" not in message
    assert API_KEY not in message
