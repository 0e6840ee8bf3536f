"""A local stack's worker removes each job's input image from its ComfyUI's input folder, as a cloud worker does:
goldgate.local.worker_process points COMFY_INPUT_DIR at the emulator's input folder, which is not beside its output
folder. A warm local worker otherwise keeps every job's upload for its whole life."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path

from test_review32_inputwk_input_images import KEY_A, WORKFLOW, _job, _png, _put

from goldgate.local.comfyui import ComfyUIEmulator
from goldgate.local.worker_process import image_env
from images.worker.config import StorageConfig
from images.worker.handler import WorkerRuntime, run_job
from images.worker.workflows import parse_workflow


def test_a_local_workers_job_leaves_no_input_image_in_its_comfyuis_input_folder(
        comfy: ComfyUIEmulator, models_dir: Path, runtime_factory: Callable[..., WorkerRuntime],
        storage: StorageConfig) -> None:
    runtime = runtime_factory(comfy.url, models_dir, **image_env(comfy, models_dir))  # as worker_process sets it up
    runtime = dataclasses.replace(runtime, workflows={WORKFLOW["id"]: parse_workflow(copy.deepcopy(WORKFLOW))})
    _put(storage, KEY_A, _png(96, 64, (200, 10, 10)))
    output = run_job(_job(KEY_A), runtime)
    assert "error" not in output, output
    assert list(comfy.backend.dirs["input"].iterdir()) == []
