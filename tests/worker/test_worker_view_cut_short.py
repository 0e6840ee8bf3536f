"""An image whose download from ComfyUI is cut short (ComfyUI dying mid-answer, a reset on the way) must fail
the job: it still starts with a PNG header, so nothing else would notice, and the client would get a broken
image in a COMPLETED job. A stand-in on loopback forwards to the emulator and cuts chosen answers short."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from worker_harness import ComfyProxy, job, s3_client, send

from images.worker.handler import run_job


class CuttingComfy(ComfyProxy):
    """Forwards every request to `upstream`; the first `limit` answers to a GET whose path starts with one of
    `cut` declare their full Content-Length, but only their first half is sent before the connection closes."""

    def __init__(self, upstream: str, cut: tuple[str, ...], limit: int) -> None:
        super().__init__(upstream)
        self.cut, self.limit = cut, limit
        self.cut_answers = 0
        self._lock = threading.Lock()

    def answer(self, handler: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str) -> None:
        cutting = False
        if handler.command == "GET" and status == 200 and handler.path.startswith(self.cut):
            with self._lock:
                cutting = self.cut_answers < self.limit
                self.cut_answers += cutting
        send(handler, status, data[:len(data) // 2] if cutting else data, ctype, length=len(data), close=True)


@pytest.fixture
def cutting() -> Iterator[Callable[..., CuttingComfy]]:
    started: list[CuttingComfy] = []

    def start(upstream: str, cut: tuple[str, ...], limit: int = 1) -> CuttingComfy:
        stand_in = CuttingComfy(upstream, cut, limit)
        started.append(stand_in)
        return stand_in

    yield start
    for stand_in in started:
        stand_in.stop()


def _stored_keys(storage) -> list[str]:
    listing = s3_client(storage.endpoint_url).list_objects_v2(Bucket=storage.bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_an_image_cut_short_on_its_way_from_comfyui_fails_the_job_and_stores_nothing(comfy, models_dir, cutting,
                                                                                    runtime_factory, storage):
    stand_in = cutting(comfy.url, ("/view",))
    out = run_job(job(), runtime_factory(stand_in.url, models_dir))
    assert stand_in.cut_answers == 1
    assert "images" not in out, out
    assert out["error"].startswith("ComfyUI's answer to GET /view"), out
    assert "was cut short" in out["error"] and "bytes arrived before the connection closed" in out["error"]
    assert _stored_keys(storage) == []


def test_history_answers_cut_short_are_retried_and_the_job_completes(comfy, models_dir, cutting, runtime_factory,
                                                                    storage):
    # A poll that got half an answer got no answer: it is retried like a reset, not taken for ComfyUI
    # answering non-JSON (which would end the job).
    stand_in = cutting(comfy.url, ("/history/",), limit=2)
    out = run_job(job(), runtime_factory(stand_in.url, models_dir))
    assert stand_in.cut_answers == 2
    assert "error" not in out, out
    assert [image["key"] for image in out["images"]] == ["results/job-1/0.png"]
    assert _stored_keys(storage) == ["results/job-1/0.png", "results/job-1/outcome.json"]
