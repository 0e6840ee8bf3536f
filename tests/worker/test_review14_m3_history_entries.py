"""History entries the worker must read as ComfyUI writes them: an older ComfyUI's entry has no "status" (it wrote
the entry only once the prompt was done), and a graph with a PreviewImage node lists "temp" images next to the
saved ones, which are no result (ComfyUI clears its temp folder at every start)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from worker_harness import ComfyProxy, job, s3_client, send

from images.worker.handler import run_job


class RewritingComfy(ComfyProxy):
    """Forwards every request to `upstream`; a GET /history/<id> answer of HTTP 200 goes through `rewrite` first,
    and GET /view is answered `view_status` (with a text body) when that is set."""

    def __init__(self, upstream: str, rewrite: Callable[[dict[str, Any]], dict[str, Any]] = lambda entry: entry,
                 view_status: int | None = None) -> None:
        super().__init__(upstream)
        self.rewrite, self.view_status = rewrite, view_status

    def intercept(self, handler: BaseHTTPRequestHandler) -> bool:
        if self.view_status is None or not handler.path.startswith("/view?"):
            return False
        send(handler, self.view_status, b"404: Not Found", "text/plain")
        return True

    def answer(self, handler: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str) -> None:
        if handler.path.startswith("/history/") and status == 200:
            data = json.dumps({pid: self.rewrite(entry) for pid, entry in json.loads(data).items()}).encode()
        send(handler, status, data, ctype)


@pytest.fixture
def rewriting(comfy) -> Iterator[Callable[..., RewritingComfy]]:
    started: list[RewritingComfy] = []

    def start(rewrite: Callable[[dict[str, Any]], dict[str, Any]] = lambda entry: entry,
              view_status: int | None = None) -> RewritingComfy:
        started.append(RewritingComfy(comfy.url, rewrite, view_status))
        return started[-1]

    yield start
    for stand_in in started:
        stand_in.stop()


def _stored_keys(storage) -> list[str]:
    listing = s3_client(storage.endpoint_url).list_objects_v2(Bucket=storage.bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_an_older_comfyuis_history_entry_without_a_status_completes_the_job(rewriting, models_dir,
                                                                            runtime_factory, storage):
    stand_in = rewriting(lambda entry: {k: v for k, v in entry.items() if k != "status"})
    out = run_job(job(), runtime_factory(stand_in.url, models_dir, COMFY_JOB_TIMEOUT_S="8"))
    assert "error" not in out, out
    assert [image["key"] for image in out["images"]] == ["results/job-1/0.png"]
    assert _stored_keys(storage) == ["results/job-1/0.png", "results/job-1/outcome.json"]


def _with_a_preview(entry: dict[str, Any]) -> dict[str, Any]:
    """A PreviewImage node ("99") next to SaveImage, as ComfyUI lists it: its image in the temp folder."""
    entry = json.loads(json.dumps(entry))
    saved = next(iter(entry["outputs"].values()))["images"][0]
    entry["outputs"]["99"] = {"images": [{"filename": "ComfyUI_temp_abcde_00001_.png", "subfolder": "",
                                          "type": "temp"}]}
    entry["outputs"]["0"] = {"images": [{**saved, "type": "temp"}]}  # sorts before the SaveImage node
    return entry


def test_preview_images_are_not_uploaded_as_results(rewriting, models_dir, runtime_factory, storage):
    out = run_job(job(), runtime_factory(rewriting(_with_a_preview).url, models_dir))
    assert "error" not in out, out
    assert [image["key"] for image in out["images"]] == ["results/job-1/0.png"]
    assert _stored_keys(storage) == ["results/job-1/0.png", "results/job-1/outcome.json"]


def test_an_image_comfyui_will_not_serve_fails_the_job_naming_the_answer(rewriting, models_dir, runtime_factory,
                                                                         storage):
    # Not "not a PNG image": the operator must learn that ComfyUI's /view refused, not suspect the render.
    out = run_job(job(), runtime_factory(rewriting(view_status=404).url, models_dir))
    assert set(out) == {"error"}, out
    assert "GET /view" in out["error"] and "HTTP 404" in out["error"], out
    assert _stored_keys(storage) == []


def test_a_prompt_that_saved_no_image_fails_the_job_instead_of_completing_it_empty(rewriting, models_dir,
                                                                                   runtime_factory, storage, logs):
    # A COMPLETED job with no image would reach the client as a result with nothing in it.
    stand_in = rewriting(lambda entry: {**entry, "outputs": {}})
    out = run_job(job(), runtime_factory(stand_in.url, models_dir))
    assert set(out) == {"error"}, out
    assert "without saving an image" in out["error"] and "SaveImage" in out["error"], out
    assert "job_completed" not in logs.events()
    assert _stored_keys(storage) == []
