"""A job RunPod stops while its worker puts its input image into ComfyUI queues no prompt: the GPU renders nothing
for a job the client has already been told is cancelled, and the image does not stay in ComfyUI's input folder."""

from __future__ import annotations

import threading

import pytest
from test_review32_inputwk_input_images import KEY_A, _job, _png, _put, img2img  # noqa: F401
from worker_harness import LogCapture

from goldgate.local.comfyui import ComfyUIEmulator
from images.worker.config import StorageConfig
from images.worker.handler import WorkerRuntime, run_job


def test_a_job_stopped_while_its_image_is_put_into_comfyui_queues_no_prompt(
        img2img: WorkerRuntime, storage: StorageConfig, comfy: ComfyUIEmulator,  # noqa: F811
        logs: LogCapture, monkeypatch: pytest.MonkeyPatch) -> None:
    _put(storage, KEY_A, _png(96, 64, (200, 10, 10)))
    stop = threading.Event()
    upload = img2img.comfy.upload_image
    queued: list[str] = []
    queue = img2img.comfy.queue_prompt

    def upload_then_cancelled(*args: object, **kwargs: object) -> str:
        name = upload(*args, **kwargs)
        stop.set()  # RunPod cancels the job while ComfyUI takes its image
        return name

    def recorded_queue(*args: object, **kwargs: object) -> str:
        queued.append("prompt")
        return queue(*args, **kwargs)

    monkeypatch.setattr(img2img.comfy, "upload_image", upload_then_cancelled)
    monkeypatch.setattr(img2img.comfy, "queue_prompt", recorded_queue)
    output = run_job(_job(KEY_A), img2img, stop)
    assert output["error"] == "job stopped while its input images loaded (1 put into ComfyUI); nothing was queued"
    assert queued == [] and comfy.backend.history() == {}
    assert "job_cancelled" in logs.events() and "prompt_queued" not in logs.events()
    assert not any(comfy.backend.dirs["input"].iterdir())  # the image it put there is removed all the same
