"""fetch_model.py never follows a redirect off https. Before: urllib followed an https -> http redirect, so the
unpinned LoRA could be baked from whatever answered the plain-http request. Real servers on 127.0.0.1: one over
TLS (a throwaway self-signed certificate the fetch trusts through SSL_CERT_FILE) and one over plain http."""

from __future__ import annotations

import hashlib
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from serving import self_signed_cert
from worker_harness import WORKER_DIR

MODEL = b"lora bytes " * 2048
MODEL_SHA256 = hashlib.sha256(MODEL).hexdigest()


@dataclass
class Servers:
    https: str
    http: str
    cert: Path
    seen_over_http: list[str] = field(default_factory=list)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    cert, key = self_signed_cert(tmp_path)
    started: list[ThreadingHTTPServer] = []
    urls: dict[str, str] = {}
    seen_over_http: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            plain = self.server is started[1]
            if plain:
                seen_over_http.append(self.path)
            # /to-http and /to-https redirect to /model on that server; /hop goes to /to-http on this one.
            target = {"/to-http": urls["http"] + "/model", "/to-https": urls["https"] + "/model",
                      "/hop": "/to-http"}.get(self.path)
            if target is not None:
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(MODEL)))
            self.end_headers()
            self.wfile.write(MODEL)

        def log_message(self, *_args: object) -> None:
            pass

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    secure = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    secure.socket = tls.wrap_socket(secure.socket, server_side=True)
    plain = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    started += [secure, plain]
    urls.update(https=f"https://127.0.0.1:{secure.server_address[1]}", http=f"http://127.0.0.1:{plain.server_address[1]}")
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True) for s in started]
    for thread in threads:
        thread.start()
    try:
        yield Servers(https=urls["https"], http=urls["http"], cert=cert, seen_over_http=seen_over_http)
    finally:
        for server in started:
            server.shutdown()
            server.server_close()


def fetch(servers: Servers, url: str, pin: str, dest: Path) -> subprocess.CompletedProcess[str]:
    """fetch_model.py as the Dockerfile runs it, trusting the test's certificate as the image trusts its CAs."""
    env = {**os.environ, "SSL_CERT_FILE": str(servers.cert), "GOLDGATE_TEST_FETCH_RETRY_DELAYS_S": "0"}
    return subprocess.run([sys.executable, str(WORKER_DIR / "fetch_model.py"), url, pin, "-", str(dest)],
                          check=False, capture_output=True, text=True, timeout=120, env=env)


def test_a_model_over_https_is_baked(servers: Servers, tmp_path: Path) -> None:
    # The fixture's TLS server is real: without this, a refusal below could be a TLS failure, not the redirect rule.
    dest = tmp_path / "loras" / "lora.safetensors"
    proc = fetch(servers, servers.https + "/to-https", "-", dest)
    assert proc.returncode == 0, proc.stderr
    assert dest.read_bytes() == MODEL


@pytest.mark.parametrize("path", ["/to-http", "/hop"])
@pytest.mark.parametrize("pin", ["-", MODEL_SHA256])
def test_a_redirect_from_https_to_http_is_refused_and_nothing_is_baked(servers: Servers, tmp_path: Path, path: str,
                                                                      pin: str) -> None:
    dest = tmp_path / "loras" / "lora.safetensors"
    proc = fetch(servers, servers.https + path, pin, dest)
    assert proc.returncode == 1, proc.stderr
    said = proc.stderr.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("fetch_model: "), proc.stderr
    assert f"to {servers.http}/model" in said[0] and "never leaves it" in said[0], said[0]
    assert "retrying" not in proc.stderr   # a downgrade is no failure in passing
    assert servers.seen_over_http == []    # the plain-http URL is never asked for
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir()] == []   # no part file left behind


def test_a_redirect_from_http_is_still_followed(servers: Servers, tmp_path: Path) -> None:
    # Only leaving https is refused: a source that starts on plain http (the tests' own servers) redirects as before.
    dest = tmp_path / "lora.safetensors"
    proc = fetch(servers, servers.http + "/to-http", MODEL_SHA256, dest)
    assert proc.returncode == 0, proc.stderr
    assert dest.read_bytes() == MODEL
