"""Review of the RunPod transport: answers that are no RunPod answer (a body without end, a body that cannot
be decoded) end in one clear RunPodError naming the call, never an httpx traceback or a hang."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from goldgate.runpod import ControlPlaneClient, DataPlaneClient, RetryPolicy, RunPodError, RunPodProtocolError
from goldgate.runpod.transport import MAX_RESPONSE_BYTES

KEY = "rp-review-key-0123456789"


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


@pytest.mark.parametrize("status", [200, 502])
def test_a_body_without_end_is_cut_off_with_a_clear_error_not_read_whole(status: int) -> None:
    server = EndlessBody(status, cap=MAX_RESPONSE_BYTES + MAX_RESPONSE_BYTES // 2)
    client = DataPlaneClient(KEY, "ep1", f"http://127.0.0.1:{server.port}/v2", retry=RetryPolicy(attempts=1))
    try:
        with pytest.raises(RunPodProtocolError) as info:
            client.status("job-1")
    finally:
        client.close()
        server.close()
    message = str(info.value)
    assert "/v2/ep1/status/job-1" in message and "more than" in message and info.value.status == status
    assert KEY not in message
    assert not server.finished  # the client stopped reading; it did not take in the whole stream


def test_a_body_that_cannot_be_decoded_is_a_clear_error_naming_the_call() -> None:
    transport = httpx.MockTransport(
        lambda _request: httpx.Response(200, content=b"not gzip at all", headers={"content-encoding": "gzip"}))
    with ControlPlaneClient(KEY, "https://api.example.test", transport=transport) as client, \
            pytest.raises(RunPodError) as info:
        client.get_endpoint("ep1")
    assert "GET https://api.example.test/v2/serverless/ep1" in str(info.value) and "decoded" in str(info.value)
    assert KEY not in str(info.value)


def test_an_error_body_is_still_read_for_its_detail() -> None:
    transport = httpx.MockTransport(lambda _request: httpx.Response(
        422, json={"title": "Unprocessable Entity", "status": 422, "detail": "workers.max must be >= min"}))
    with ControlPlaneClient(KEY, "https://api.example.test", transport=transport) as client, \
            pytest.raises(RunPodError, match="workers.max must be >= min") as info:
        client.get_endpoint("ep1")
    assert info.value.status == 422 and info.value.title == "Unprocessable Entity"
