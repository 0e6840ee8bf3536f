"""A proxy that refuses the tunnel (its answer to CONNECT is no 2xx) let nothing through to RunPod, so even
POST /run is tried again, and when it never gets through the error says so, not that the run may or may not have
been queued. Real servers on 127.0.0.1: an HTTPS stand-in for RunPod's /run (a throwaway self-signed certificate
the client trusts) behind an HTTP CONNECT proxy that refuses its first tunnels."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from emulator_harness import API_KEY
from serving import self_signed_cert

from goldgate.runpod import DataPlaneClient, RetryPolicy, RunPodUnavailable

FAST = RetryPolicy(attempts=3, backoff_s=0.01, max_backoff_s=0.02)


@dataclass
class Setup:
    runpod_port: int
    proxy_port: int
    cert: Path
    runs: list[dict] = field(default_factory=list)  # the /run bodies RunPod's stand-in received
    refusals: list[str] = field(default_factory=list)  # the CONNECT targets the proxy refused
    refuse: int = 0  # how many more tunnels the proxy refuses


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    cert, key = self_signed_cert(tmp_path)
    runs: list[dict] = []

    class RunPod(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/v2/ep1/run" or self.headers.get("Authorization") != f"Bearer {API_KEY}":
                self.send_error(404)
                return
            runs.append(json.loads(body))
            answer = json.dumps({"id": f"job-{len(runs)}", "status": "IN_QUEUE"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: object) -> None:
            pass

    runpod = ThreadingHTTPServer(("127.0.0.1", 0), RunPod)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    runpod.socket = context.wrap_socket(runpod.socket, server_side=True)
    state = Setup(runpod.server_address[1], 0, cert, runs)

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_CONNECT(self) -> None:
            if state.refuse > 0:
                state.refuse -= 1
                state.refusals.append(self.path)
                self.send_response(403, "Forbidden")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            host, port = self.path.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            self.send_response(200, "Connection established")
            self.end_headers()
            self.close_connection = True
            back = threading.Thread(target=_pipe, args=(upstream, self.connection), daemon=True)
            back.start()
            _pipe(self.connection, upstream)
            back.join(10)
            upstream.close()

        def log_message(self, *_: object) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    state.proxy_port = proxy.server_address[1]
    servers = [runpod, proxy]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    for server in servers:
        server.shutdown()
        server.server_close()


def _client(setup: Setup) -> DataPlaneClient:
    transport = httpx.HTTPTransport(proxy=f"http://127.0.0.1:{setup.proxy_port}",
                                    verify=ssl.create_default_context(cafile=str(setup.cert)))
    client = DataPlaneClient(API_KEY, "ep1", f"https://127.0.0.1:{setup.runpod_port}/v2", retry=FAST,
                             timeout_s=5.0, transport=transport)
    client._http._sleep = lambda _seconds: None
    return client


def test_a_run_whose_tunnel_the_proxy_refused_is_sent_again_and_queued_once(setup: Setup) -> None:
    setup.refuse = 1
    with _client(setup) as client:
        job = client.run({"prompt": "a lighthouse"})
    assert (job.id, job.status) == ("job-1", "IN_QUEUE")
    assert setup.refusals == [f"127.0.0.1:{setup.runpod_port}"]
    assert setup.runs == [{"input": {"prompt": "a lighthouse"}}]


def test_a_proxy_that_never_lets_the_run_through_says_nothing_was_queued(setup: Setup) -> None:
    setup.refuse = 99
    with _client(setup) as client, pytest.raises(RunPodUnavailable) as err:
        client.run({"prompt": "a lighthouse"})
    message = str(err.value)
    assert len(setup.refusals) == 3 and setup.runs == []
    assert f"cannot connect to the RunPod serverless endpoint at https://127.0.0.1:{setup.runpod_port}" in message
    assert "ProxyError" in message and "after 3 attempts" in message and "proxy" in message.split("attempts")[1]
    assert "may or may not" not in message and API_KEY not in message
