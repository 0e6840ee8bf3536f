"""POST /prompt answered with bytes that are not even UTF-8 text (a proxy's error page in another encoding, a
corrupted answer): the job fails naming ComfyUI's answer, not as an 'internal worker error' that points at the
worker's own code."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from worker_harness import job

from images.worker.handler import run_job

GARBLED = b"\x80\x81\xfe not text"


@pytest.fixture
def garbling_comfy() -> Iterator[str]:
    """A ComfyUI stand-in: ready, and answering every POST with GARBLED."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(b'{"queue_running": [], "queue_pending": []}' if self.path == "/queue" else b"{}")

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._reply(GARBLED)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_prompt_answer_that_is_not_text_fails_the_job_naming_comfyuis_answer(garbling_comfy, models_dir,
                                                                               runtime_factory, logs):
    out = run_job(job(), runtime_factory(garbling_comfy, models_dir))
    assert out["error"].startswith("ComfyUI POST /prompt answered HTTP 200 with non-JSON"), out
    assert "internal worker error" not in out["error"]
    assert "job_failed" in logs.events()
