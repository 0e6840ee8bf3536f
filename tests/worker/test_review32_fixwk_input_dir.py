"""ComfyUI's input folder is a worker setting of its own, COMFY_INPUT_DIR (default the image's /comfyui/input): the
worker removes each job's input image from there, not from an `input` folder it guesses beside COMFY_OUTPUT_DIR
(which on a local stack is a shared TMPDIR's), and a removal that fails says it was an input, not an output."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path

from test_review32_inputwk_input_images import KEY_A, WORKFLOW, _job, _png, _put
from worker_harness import LogCapture

from goldgate.local.comfyui import ComfyUIEmulator
from images.worker.config import StorageConfig, load_config
from images.worker.handler import WorkerRuntime, run_job
from images.worker.workflows import parse_workflow


def _img2img(runtime: WorkerRuntime) -> WorkerRuntime:
    return dataclasses.replace(runtime, workflows={WORKFLOW["id"]: parse_workflow(copy.deepcopy(WORKFLOW))})


def test_comfy_input_dir_names_comfyuis_input_folder_and_defaults_to_the_images() -> None:
    assert load_config({}).comfy_input_dir == "/comfyui/input"
    assert load_config({"COMFY_INPUT_DIR": " /srv/comfy/in "}).comfy_input_dir == "/srv/comfy/in"
    assert load_config({"COMFY_INPUT_DIR": ""}).comfy_input_dir == "/comfyui/input"


def test_a_job_removes_its_input_from_comfy_input_dir_and_nothing_from_the_folder_beside_its_output_folder(
        comfy: ComfyUIEmulator, models_dir: Path, storage: StorageConfig, tmp_path: Path,
        runtime_factory: Callable[..., WorkerRuntime]) -> None:
    # As on a local stack: the output folder sits in a TMPDIR other workers share, and the `input` folder beside it
    # holds a file of another worker's under the name this job's upload gets.
    shared = tmp_path / "tmpdir"
    (shared / "input").mkdir(parents=True)
    bystander = shared / "input" / "job-1-image.png"
    bystander.write_bytes(b"another worker's upload")
    runtime = _img2img(runtime_factory(comfy.url, models_dir, COMFY_OUTPUT_DIR=str(shared / "output"),
                                       COMFY_INPUT_DIR=str(comfy.backend.dirs["input"])))
    _put(storage, KEY_A, _png(96, 64, (200, 10, 10)))
    output = run_job(_job(KEY_A), runtime)
    assert "error" not in output, output
    assert list(comfy.backend.dirs["input"].iterdir()) == [], "the job's upload stayed in ComfyUI's input folder"
    assert bystander.read_bytes() == b"another worker's upload"


def test_an_input_image_that_cannot_be_removed_is_an_inputs_not_removed_warning_and_the_job_completes(
        comfy: ComfyUIEmulator, models_dir: Path, storage: StorageConfig, logs: LogCapture, tmp_path: Path,
        runtime_factory: Callable[..., WorkerRuntime]) -> None:
    # The image's layout (input beside output), with the job's input name taken by a folder: its unlink fails.
    held = tmp_path / "comfyui" / "input" / "job-1-image.png"
    held.mkdir(parents=True)
    runtime = _img2img(runtime_factory(comfy.url, models_dir, COMFY_OUTPUT_DIR=str(tmp_path / "comfyui" / "output"),
                                       COMFY_INPUT_DIR=str(held.parent)))
    _put(storage, KEY_A, _png(96, 64, (200, 10, 10)))
    output = run_job(_job(KEY_A), runtime)
    assert "error" not in output, output
    [warning] = [line for line in logs.lines() if line["event"] == "inputs_not_removed"]
    assert warning["level"] == "warning" and warning["data"] == {"path": str(held)}
    assert "input image" in warning["message"] and "stays on the worker's disk" in warning["message"]
    assert "outputs_not_removed" not in logs.events()
