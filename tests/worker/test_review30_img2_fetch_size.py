"""fetch_model.py takes models.yaml's size (`URL SHA256|- SIZE|- DEST`) and stops a download as soon as it is longer.

Before: the size never reached the build. A wrong file (another model at the URL, an HTML error page that grew) was
downloaded in full before its sha256 failed it, and a server that never stopped sending filled the builder's disk."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_fetch_model import DELAYS_ENV, MODEL, MODEL_SHA256
from worker_harness import WORKER_DIR

SIZE = len(MODEL)
NAME = "model.safetensors"


class _Sources(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        if self.path == "/endless":   # no Content-Length, and it never ends
            self.end_headers()
            try:
                while True:
                    self.wfile.write(MODEL)
            except OSError:   # the reader hung up: what this test wants
                return
        if self.path == "/bigger":    # announces another file's length, and sends it (up to a reader that leaves)
            self.send_header("Content-Length", str(SIZE * 1000))
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(MODEL)
            except OSError:
                pass
            return
        self.send_header("Content-Length", str(SIZE))   # the model itself
        self.end_headers()
        self.wfile.write(MODEL)

    def log_message(self, *_args: object) -> None:
        pass


def fetch(*args: str) -> subprocess.CompletedProcess[str]:
    """fetch_model.py run as the Dockerfile runs it, with retries that do not wait."""
    return subprocess.run([sys.executable, str(WORKER_DIR / "fetch_model.py"), *args], check=False,
                          capture_output=True, text=True, timeout=120, env={**os.environ, DELAYS_ENV: "0,0,0"})


@pytest.fixture
def sources() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Sources)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _refused(done, dest: Path) -> str:
    assert done.returncode == 1, done.stderr
    assert list(dest.parent.iterdir()) == [], "nothing is left at DEST, nor a partial file beside it"
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith(f"fetch_model: {NAME}: "), done.stderr
    return lines[-1]


def test_a_model_of_its_size_is_baked(sources: str, tmp_path: Path) -> None:
    dest = tmp_path / "checkpoints" / NAME
    done = fetch(f"{sources}/model", MODEL_SHA256, str(SIZE), str(dest))
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == MODEL


def test_a_server_that_never_stops_sending_is_stopped_one_byte_past_the_size(sources: str, tmp_path: Path) -> None:
    dest = tmp_path / "checkpoints" / NAME
    said = _refused(fetch(f"{sources}/endless", "-", str(SIZE), str(dest)), dest)
    assert f"sent more than that (stopped at {SIZE + 1} bytes), models.yaml gives it {SIZE} bytes" in said, said
    assert "check source_url and size in models.yaml" in said


def test_a_file_that_announces_another_length_is_refused_before_its_body(sources: str, tmp_path: Path) -> None:
    dest = tmp_path / "checkpoints" / NAME
    said = _refused(fetch(f"{sources}/bigger", MODEL_SHA256, str(SIZE), str(dest)), dest)
    assert f"{sources}/bigger announces {SIZE * 1000} bytes (Content-Length), models.yaml gives it {SIZE}" in said


def test_a_file_shorter_than_its_size_fails_naming_both_sizes(sources: str, tmp_path: Path) -> None:
    dest = tmp_path / "checkpoints" / NAME
    said = _refused(fetch(f"{sources}/model", "-", str(SIZE + 1), str(dest)), dest)
    assert f"announces {SIZE} bytes (Content-Length), models.yaml gives it {SIZE + 1} bytes" in said, said


def test_a_fetch_line_without_the_size_bakes_and_says_nothing_bounds_it(sources: str, tmp_path: Path) -> None:
    # The line shape before SIZE (URL SHA256 DEST), as a Dockerfile written from older instructions has it.
    dest = tmp_path / "checkpoints" / NAME
    done = fetch(f"{sources}/model", MODEL_SHA256, str(dest))
    assert done.returncode == 0 and dest.read_bytes() == MODEL, done.stderr
    assert (f"fetch_model: warning: no SIZE given for {dest}: its download is not bounded" in done.stderr
            and "give models.yaml's size: fetch_model.py URL SHA256|- SIZE|- DEST" in done.stderr), done.stderr
