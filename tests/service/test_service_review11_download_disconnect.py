"""A result download whose client goes away stops reading the object from the store: uvicorn drops what the app
sends to a closed connection without telling it, so before this the server read every remaining chunk of the
object from the store (and held a store connection) for nobody. Real uvicorn in this process, real botocore over
HTTP to moto, a real socket that closes mid-body."""

from __future__ import annotations

import socket
import threading
from typing import Any

from service_testkit import API_TOKEN, BUCKET, make_config

from service.local_server import start_in_thread
from service.s3_store import _CHUNK

CHUNKS = 256  # 16 MiB: far more than the socket buffers between the server and a client that stopped reading
JOB = "f" * 32


class CountedBody:
    """The store's body stream, counting the chunks read from it and telling when it is closed."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.reads = 0
        self.closed = threading.Event()

    def read(self, size: int) -> bytes:
        self.reads += 1
        return self.body.read(size)

    def close(self) -> None:
        self.body.close()
        self.closed.set()


def _count_reads(store: Any) -> list[CountedBody]:
    opened: list[CountedBody] = []
    get = store._get

    def counted_get(key: str) -> Any:
        found = get(key)
        if found is None:
            return None
        meta, body, first = found
        opened.append(CountedBody(body))
        return meta, opened[-1], first

    store._get = counted_get
    return opened


def _read_a_little_then_close(port: int, path: str) -> None:
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # keep what the kernel buffers for it small
    client.connect(("127.0.0.1", port))
    client.settimeout(30)
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {API_TOKEN}\r\n\r\n".encode())
    received = b""
    while len(received) < 2 * _CHUNK:
        data = client.recv(65536)
        assert data, "the server closed the download early"
        received += data
    assert received.startswith(b"HTTP/1.1 200 ")
    client.close()


def test_a_download_whose_client_went_away_stops_reading_the_object_from_the_store(tmp_path, db_path, s3,
                                                                                     moto_endpoint, fake_runpod,
                                                                                     log_lines):
    key = f"results/{JOB}/0.png"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"\x89PNG" + bytes(CHUNKS * _CHUNK - 4), ContentType="image/png")
    config = make_config(runpod_endpoint_base=fake_runpod.base, db_path=str(db_path), s3_endpoint_url=moto_endpoint)
    server = start_in_thread(config, log_sink=log_lines.sink)
    try:
        opened = _count_reads(server.service.app.store)
        _read_a_little_then_close(server.port, f"/api/result/{key}")
        [body] = opened
        read_when_the_client_left = body.reads
        assert body.closed.wait(60), "the store's stream was never closed"
        # A chunk or two may be read while the disconnect is noticed (the margin is for a loaded machine); before,
        # every chunk left was read.
        assert body.reads - read_when_the_client_left <= 8, (read_when_the_client_left, body.reads)
        assert body.reads < CHUNKS
    finally:
        server.stop()
    assert not [line for line in log_lines if '"level":"error"' in line]
