"""Stand-in HTTP peers for tests, on 127.0.0.1 and a free port: a handler class served from a thread, a peer
whose body never ends, one that sends its answer a byte at a time, a throwaway certificate for one over TLS,
the config of a real service that only sits idle, and a handler base that answers JSON."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.config import ServiceConfig

_REPO = Path(__file__).resolve().parents[1]


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


class JsonHandler(BaseHTTPRequestHandler):
    """A stand-in's handler base: logs nothing, and `_json` answers `status` with `body` as JSON (its length
    declared)."""

    def log_message(self, *_: object) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)



def wait_until(predicate: Callable[[], object], what: str, wait_s: float, why: str) -> None:
    """Wait for predicate() to hold, up to `wait_s` (a bound on a wait, not a speed bound); fail naming `what` and
    `why` it never came."""
    pause = threading.Event()
    for _ in range(int(wait_s / 0.05)):
        if predicate():
            return
        pause.wait(0.05)
    assert predicate(), f"gave up waiting for {what} after {wait_s:g} s: {why}"

def self_signed_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (valid a day either side of now) and its key, as PEM files
    `cert.pem` and `key.pem` in `tmp_path`: a TLS stand-in serves with both, and its client trusts the certificate."""
    from cryptography import x509  # installed with moto, a test dependency: never skipped
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path



def idle_service_config(tmp_path: Path) -> ServiceConfig:
    """The config of a real service (uvicorn, the app) that is only watched sitting idle: its RunPod and S3 are
    127.0.0.1:9, where nothing listens; its database tmp_path/db.sqlite, migrated when it starts."""
    from service.config import ServiceConfig

    return ServiceConfig.from_mapping({
        "stack": "test", "api_token": "t" * 32, "webhook_secret": "w" * 32, "runpod_api_key": "rp_test_key_0123456789abcdef",
        "runpod_endpoint_base": "http://127.0.0.1:9/v2/ep-test", "public_base_url": "http://api.test",
        "workflows_dir": str(_REPO / "images" / "worker" / "workflows"), "gpu_type": "NVIDIA GeForce RTX 4090",
        "gpu_count": 1, "worker_image_tag": "local/worker@sha256:" + "a" * 64, "workflow_version": "2026.11.0",
        "db_path": str(tmp_path / "db.sqlite"), "apply_migrations_from": str(_REPO / "migrations"),
        "s3_endpoint_url": "http://127.0.0.1:9", "s3_bucket": "results", "s3_access_key_id": "key-id",
        "s3_secret_access_key": "s" * 40})


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
