"""fetch_model.py, the script the Dockerfile bakes each model with, against an HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from worker_harness import WORKER_DIR

MODEL = b"safetensors bytes " * 4096
MODEL_SHA256 = hashlib.sha256(MODEL).hexdigest()


class _Models(BaseHTTPRequestHandler):
    failures_left: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        if self.path == "/missing.safetensors":
            self.send_error(404)
        elif self.path == "/broken.safetensors" or self.failures_left.get(self.path, 0) > 0:
            self.failures_left[self.path] = self.failures_left.get(self.path, 0) - 1
            self.send_error(500)
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(MODEL)))
            self.end_headers()
            self.wfile.write(MODEL)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Models.failures_left = {"/flaky.safetensors": 1}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# Real back-off (1, 2, 4 s) would make each retrying test wait it out; the retries themselves are the same.
TEST_DELAYS = "0,0,0"
DELAYS_ENV = "GOLDGATE_TEST_FETCH_RETRY_DELAYS_S"


def fetch(url: str, pin: str, dest: Path, delays: str | None = TEST_DELAYS,
          size: str = "-") -> subprocess.CompletedProcess[str]:
    """fetch_model.py run as the Dockerfile runs it; `delays` None leaves its built-in retry delays; `size` "-" leaves
    the length unchecked, as the Dockerfile's line does for a model models.yaml gives no size."""
    env = {k: v for k, v in os.environ.items() if k != DELAYS_ENV}
    if delays is not None:
        env[DELAYS_ENV] = delays
    return subprocess.run([sys.executable, str(WORKER_DIR / "fetch_model.py"), url, pin, size, str(dest)],
                          check=False, capture_output=True, text=True, timeout=120, env=env)


def waits(stderr: str) -> list[str]:
    """The retry delays fetch_model announced, in order."""
    return re.findall(r"; retrying in (\S+) s$", stderr, re.MULTILINE)


def test_a_model_with_its_pinned_sha256_is_baked_readable_by_everyone(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "models" / "checkpoints" / "model.safetensors"
    done = fetch(f"{server}/model.safetensors", MODEL_SHA256, dest)
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == MODEL
    assert dest.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no partial file left beside it


def test_the_model_layer_is_the_same_whenever_it_is_built(server: str, tmp_path: Path) -> None:
    # A rebuild on a fresh builder must give the same layer bytes, so the registry already has it and the
    # model is not pushed again: the file and the directory it lands in keep no build-time mtime.
    models = tmp_path / "models"
    models.mkdir()
    before = models.stat().st_mtime_ns
    dest = models / "loras" / "model.safetensors"
    assert fetch(f"{server}/model.safetensors", MODEL_SHA256, dest).returncode == 0
    assert dest.stat().st_mtime == 0 and dest.parent.stat().st_mtime == 0
    assert models.stat().st_mtime_ns == before


def test_a_sha256_mismatch_fails_the_build_and_leaves_nothing(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "models" / "vae" / "ae.safetensors"
    done = fetch(f"{server}/ae.safetensors", "0" * 64, dest)
    assert done.returncode != 0
    assert f"has sha256 {MODEL_SHA256}, models.yaml pins {'0' * 64}" in done.stderr
    assert list(dest.parent.iterdir()) == []


def test_an_unpinned_model_is_baked_and_says_so_with_its_sha256(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "loras" / "lora.safetensors"
    done = fetch(f"{server}/lora.safetensors", "-", dest)
    assert done.returncode == 0 and dest.read_bytes() == MODEL
    assert "UNPINNED" in done.stderr and MODEL_SHA256 in done.stderr


@pytest.mark.parametrize(("path", "answer"), [("/missing.safetensors", "404"), ("/broken.safetensors", "500")])
def test_an_http_error_fails_the_build_with_one_clear_line(server: str, tmp_path: Path, path: str,
                                                           answer: str) -> None:
    dest = tmp_path / "models" / "model.safetensors"
    done = fetch(f"{server}{path}", MODEL_SHA256, dest)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"fetch_model: GET {server}{path} answered {answer}"), done.stderr
    assert "Traceback" not in done.stderr
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_a_server_error_in_passing_is_retried(server: str, tmp_path: Path) -> None:
    # Without the tests' variable (as in the Dockerfile's build) the first retry backs off the built-in 1 s.
    dest = tmp_path / "model.safetensors"
    done = fetch(f"{server}/flaky.safetensors", MODEL_SHA256, dest, delays=None)
    assert done.returncode == 0, done.stderr
    assert "answered 500" in done.stderr and dest.read_bytes() == MODEL
    assert waits(done.stderr) == ["1"]


def test_a_lasting_server_error_is_retried_once_after_each_delay_then_fails(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "model.safetensors"
    done = fetch(f"{server}/broken.safetensors", MODEL_SHA256, dest, delays="0.01,0.02,0.04")
    assert done.returncode == 1
    assert waits(done.stderr) == ["0.01", "0.02", "0.04"]
    assert done.stderr.strip().splitlines()[-1].endswith("(gave up after 4 attempts)"), done.stderr
    assert not dest.exists()


@pytest.mark.parametrize("delays", ["soon", "1,,2", "-1", "nan", "inf"])
def test_malformed_test_delays_are_refused_before_downloading(tmp_path: Path, delays: str) -> None:
    done = fetch("http://127.0.0.1:9/never", MODEL_SHA256, tmp_path / "model.safetensors", delays=delays)
    assert done.returncode == 2
    assert done.stderr.startswith(f"fetch_model: {DELAYS_ENV}={delays!r} is not a comma-separated list of "
                                  f"seconds >= 0"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_the_dockerfile_build_leaves_the_test_delays_unset() -> None:
    # The image's build must back off for real: a build-time ENV or ARG of that name would end that.
    assert DELAYS_ENV not in (WORKER_DIR / "Dockerfile").read_text()


def test_a_malformed_pin_is_refused_before_downloading(tmp_path: Path) -> None:
    done = fetch("http://127.0.0.1:9/never", "sha256:" + MODEL_SHA256, tmp_path / "model.safetensors")
    assert done.returncode == 2 and "64 lowercase hex digits" in done.stderr
    assert list(tmp_path.iterdir()) == []


class _CutShort(BaseHTTPRequestHandler):
    """Announces the whole model, sends a part of it and closes the connection, `cuts_left` times."""
    cuts_left: ClassVar[int] = 0

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(MODEL)))
        self.end_headers()
        if type(self).cuts_left > 0:
            type(self).cuts_left -= 1
            self.wfile.write(MODEL[:1000])
            self.close_connection = True
        else:
            self.wfile.write(MODEL)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def cut_short() -> Iterator[str]:
    _CutShort.cuts_left = 1
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _CutShort)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_download_cut_short_is_retried_not_baked_truncated(cut_short: str, tmp_path: Path) -> None:
    # Unpinned, nothing but the Content-Length can tell a cut-off model from the real one.
    dest = tmp_path / "loras" / "lora.safetensors"
    done = fetch(f"{cut_short}/lora.safetensors", "-", dest)
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == MODEL
    assert f"ended after 1000 of the {len(MODEL)} bytes" in done.stderr


def test_a_download_cut_short_is_not_blamed_on_the_pin(cut_short: str, tmp_path: Path) -> None:
    dest = tmp_path / "models" / "model.safetensors"
    done = fetch(f"{cut_short}/model.safetensors", MODEL_SHA256, dest)
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == MODEL and "models.yaml pins" not in done.stderr


class _RateLimited(BaseHTTPRequestHandler):
    """A host that answers 429 with Retry-After, and 429 again to any request before that time is up."""
    RETRY_AFTER_S: ClassVar[int] = 1  # longer than every test retry delay together (TEST_DELAYS: 0 + 0 + 0 s)
    free_at: ClassVar[float | None] = None

    def do_GET(self) -> None:
        now = time.monotonic()
        if _RateLimited.free_at is None or now < _RateLimited.free_at:
            _RateLimited.free_at = _RateLimited.free_at or now + self.RETRY_AFTER_S
            self.send_response(429)
            self.send_header("Retry-After", str(self.RETRY_AFTER_S))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(MODEL)))
        self.end_headers()
        self.wfile.write(MODEL)

    def log_message(self, *_args: object) -> None:
        pass


def test_a_429_is_retried_after_the_time_its_retry_after_asks_for(tmp_path: Path) -> None:
    _RateLimited.free_at = None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _RateLimited)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        dest = tmp_path / "models" / "model.safetensors"
        done = fetch(f"http://127.0.0.1:{httpd.server_address[1]}/model.safetensors", MODEL_SHA256, dest)
    finally:
        httpd.shutdown()
        httpd.server_close()
    # The host refuses any retry before its Retry-After is up: a fetch that did not wait it out would spend all
    # its (0 s) retries on 429s and fail.
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == MODEL and "answered 429" in done.stderr
    assert waits(done.stderr) == ["1"]
