"""Mutation audit of the worker's input images (images/worker: handler._with_input_images and _discard_inputs,
comfy_client.upload_image, workflows' image check): a key of another shape is refused before anything is read, a
job stopped before its input is read reads nothing, the render a job's run is recorded under is the key's, not the
ComfyUI file name's, and clearing ComfyUI's input folder afterwards never hides the job's own outcome."""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from test_review32_inputwk_input_images import (  # noqa: F401
    KEY_A,
    KEY_B,
    WORKFLOW,
    _job,
    _png,
    _put,
    _UploadAnswer,
    img2img,
)
from worker_harness import LogCapture

from goldgate.local.comfyui import ComfyUIEmulator
from images.worker.comfy_client import ComfyClient, ComfyError
from images.worker.config import StorageConfig
from images.worker.handler import WorkerRuntime, run_job
from images.worker.workflows import parse_workflow


@pytest.mark.parametrize("value", ["inputs/" + "a" * 32 + ".gif", "inputs/" + "a" * 32 + ".png\n",
                                   "inputs/" + "a" * 32 + ".pngx"])
def test_a_key_of_another_shape_than_post_api_inputs_answers_is_refused_before_anything_is_read(
        img2img: WorkerRuntime, storage: StorageConfig, comfy: ComfyUIEmulator, logs: LogCapture,  # noqa: F811
        value: str) -> None:
    if "\n" not in value:  # S3 takes no such key
        _put(storage, value, _png(96, 64, (200, 10, 10)))
    output = run_job(_job(value), img2img)
    assert "input 'image' must be the key of an uploaded input image" in output.get("error", ""), output
    assert "job_rejected" in logs.events() and comfy.backend.history() == {}
    assert not any(comfy.backend.dirs["input"].iterdir())


def test_a_job_stopped_once_comfyui_is_ready_reads_no_input_image(
        img2img: WorkerRuntime, storage: StorageConfig, comfy: ComfyUIEmulator,  # noqa: F811
        logs: LogCapture, monkeypatch: pytest.MonkeyPatch) -> None:
    _put(storage, KEY_A, _png(96, 64, (200, 10, 10)))
    stop = threading.Event()
    ready = img2img.comfy.wait_ready

    def ready_then_cancelled(timeout_s: float, stop_event: threading.Event | None = None) -> float:
        waited = ready(timeout_s, stop_event)
        stop.set()  # RunPod cancels the job just as ComfyUI answered
        return waited

    monkeypatch.setattr(img2img.comfy, "wait_ready", ready_then_cancelled)
    output = run_job(_job(KEY_A), img2img, stop)
    assert output["error"] == f"job stopped before its input image {KEY_A} was read; nothing was rendered"
    assert "job.input_image.loaded" not in logs.events() and comfy.backend.history() == {}


def test_the_same_job_run_again_with_another_input_image_is_another_render_never_the_first_ones(
        img2img: WorkerRuntime, storage: StorageConfig) -> None:  # noqa: F811
    _put(storage, KEY_A, _png(96, 64, (200, 10, 10)))
    _put(storage, KEY_B, _png(96, 64, (10, 10, 200)))
    first = run_job(_job(KEY_A, "job-7"), img2img)
    assert "error" not in first, first
    # Both runs hand ComfyUI a file named job-7-image.png: only the key tells the two renders apart.
    second = run_job(_job(KEY_B, "job-7"), img2img)
    assert second.get("images") != first["images"], second
    assert "refusing to overwrite a stored result" in second["error"], second


def test_an_upload_answered_200_without_json_fails_naming_the_file(comfy: ComfyUIEmulator) -> None:
    proxy = _UploadAnswer(comfy.url, 200, b"<html>ok</html>")
    try:
        with pytest.raises(ComfyError, match=r"POST /upload/image of job-1-image\.png answered HTTP 200: b'<html>"):
            ComfyClient(proxy.url).upload_image("job-1-image.png", b"\x89PNG data", "image/png")
    finally:
        proxy.stop()


def _through(proxy: _UploadAnswer, comfy: ComfyUIEmulator, models_dir: Path,
             runtime_factory: Callable[..., WorkerRuntime]) -> WorkerRuntime:
    runtime = runtime_factory(proxy.url, models_dir, COMFY_INPUT_DIR=str(comfy.backend.dirs["input"]))
    workflow = parse_workflow(copy.deepcopy(WORKFLOW))
    return dataclasses.replace(runtime, workflows={workflow.id: workflow})


def test_an_input_comfyui_never_kept_is_no_warning_when_the_job_clears_its_inputs(
        comfy: ComfyUIEmulator, models_dir: Path, storage: StorageConfig, logs: LogCapture,
        runtime_factory: Callable[..., WorkerRuntime]) -> None:
    proxy = _UploadAnswer(comfy.url, 200, json.dumps({"name": "ghost.png", "subfolder": "", "type": "input"}).encode())
    try:
        _put(storage, KEY_A, _png(96, 64, (1, 2, 3)))
        output = run_job(_job(KEY_A), _through(proxy, comfy, models_dir, runtime_factory))
    finally:
        proxy.stop()
    assert "Invalid image file: ghost.png" in output["error"]
    assert not {"inputs_not_removed", "outputs_not_removed"} & set(logs.events())


def test_an_input_that_cannot_be_removed_is_a_warning_and_the_job_still_says_what_failed(
        comfy: ComfyUIEmulator, models_dir: Path, storage: StorageConfig, logs: LogCapture,
        runtime_factory: Callable[..., WorkerRuntime]) -> None:
    (comfy.backend.dirs["input"] / "held.png").mkdir()  # unlink of a directory fails (IsADirectoryError)
    proxy = _UploadAnswer(comfy.url, 200, json.dumps({"name": "held.png", "subfolder": "", "type": "input"}).encode())
    try:
        _put(storage, KEY_A, _png(96, 64, (1, 2, 3)))
        output = run_job(_job(KEY_A), _through(proxy, comfy, models_dir, runtime_factory))
    finally:
        proxy.stop()
    assert "LoadImage" in output["error"] and "Traceback" not in output["error"], output
    [warning] = [line for line in logs.lines() if line["event"] == "inputs_not_removed"]
    assert "held.png" in warning["message"] and "stays on the worker's disk" in warning["message"]


@pytest.mark.parametrize(("status", "answer"), [(500, {"name": "x.png", "subfolder": "", "type": "input"}),
                                                (200, {"name": "", "subfolder": "", "type": "input"})])
def test_an_upload_answered_with_an_error_status_or_an_empty_name_fails_naming_the_file(
        comfy: ComfyUIEmulator, status: int, answer: dict[str, str]) -> None:
    proxy = _UploadAnswer(comfy.url, status, json.dumps(answer).encode())
    try:
        with pytest.raises(ComfyError, match=rf"POST /upload/image of job-1-image\.png answered HTTP {status}"):
            ComfyClient(proxy.url).upload_image("job-1-image.png", b"\x89PNG data", "image/png")
    finally:
        proxy.stop()
