"""A workflow's image parameter, end to end on the worker: the job input carries the R2 key of the client's upload,
the worker reads that object, puts it into ComfyUI's input folder with ComfyUI's POST /upload/image, points the
LoadImage node at the answered name and stores the render; an object missing, of another type or too large fails
the job naming the key. A workflow file may give an image parameter no default, bound or list."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from worker_harness import ComfyProxy, LogCapture, job, s3_client, send

from goldgate.local.comfyui import ComfyUIEmulator
from images.worker import storage as storage_module
from images.worker.comfy_client import ComfyClient, ComfyError, PromptRejected
from images.worker.config import StorageConfig
from images.worker.first_aid import explain_rejection
from images.worker.handler import WorkerRuntime, run_job
from images.worker.workflows import WorkflowError, parse_workflow

KEY_A = "inputs/" + "a" * 32 + ".png"
KEY_B = "inputs/" + "b" * 32 + ".png"
IMAGE_PARAMETER = {"name": "image", "type": "image", "required": True, "default": None, "min": None, "max": None,
                   "choices": None, "node": "10", "input": "image"}
WORKFLOW = {
    "id": "sdxl-img2img", "version": "sdxl-img2img@1.0.0", "description": "Image to image with SDXL.",
    "parameters": [
        IMAGE_PARAMETER,
        {"name": "prompt", "type": "string", "required": True, "default": None, "min": 1, "max": 2000,
         "choices": None, "node": "6", "input": "text"},
        {"name": "denoise", "type": "number", "required": False, "default": 0.6, "min": 0.0, "max": 1.0,
         "choices": None, "node": "3", "input": "denoise"},
    ],
    "graph": {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "10": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "11": {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 0, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 0.6,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["11", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "goldgate", "images": ["8", 0]}},
    },
}


def _png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def img2img(comfy: ComfyUIEmulator, models_dir: Path, runtime_factory: Callable[..., WorkerRuntime]) -> WorkerRuntime:
    """A worker shipping the img2img workflow, its COMFY_OUTPUT_DIR and COMFY_INPUT_DIR the emulator's folders (as
    goldgate.local.worker_process sets them)."""
    runtime = runtime_factory(comfy.url, models_dir, COMFY_OUTPUT_DIR=str(comfy.output_dir),
                              COMFY_INPUT_DIR=str(comfy.backend.dirs["input"]))
    workflow = parse_workflow(copy.deepcopy(WORKFLOW))
    return dataclasses.replace(runtime, workflows={workflow.id: workflow})


def _put(storage: StorageConfig, key: str, body: bytes, content_type: str = "image/png") -> None:
    s3_client(storage.endpoint_url).put_object(Bucket=storage.bucket, Key=key, Body=body, ContentType=content_type)


def _job(key: str, job_id: str = "job-1", **inputs: Any) -> dict[str, Any]:
    return job({"image": key, "prompt": "a lighthouse", **inputs}, workflow="sdxl-img2img", job_id=job_id)


def test_a_jobs_input_image_is_fetched_uploaded_wired_and_its_render_stored(
        img2img: WorkerRuntime, comfy: ComfyUIEmulator, storage: StorageConfig, logs: LogCapture) -> None:
    _put(storage, KEY_A, _png(96, 64, (200, 10, 10)))
    output = run_job(_job(KEY_A), img2img)
    assert "error" not in output, output
    [image] = output["images"]
    assert image["key"] == "results/job-1/0.png" and (image["width"], image["height"]) == (96, 64)
    stored = s3_client(storage.endpoint_url).get_object(Bucket=storage.bucket, Key="results/job-1/0.png")
    assert Image.open(io.BytesIO(stored["Body"].read())).size == (96, 64)
    # ComfyUI was given the file under a name of the job's own, and the LoadImage node loaded that name
    [entry] = comfy.backend.history().values()
    assert entry["prompt"][2]["10"]["inputs"]["image"] == "job-1-image.png"
    loaded = next(line for line in logs.lines() if line["event"] == "job.input_image.loaded")
    assert loaded["data"]["key"] == KEY_A and loaded["data"]["comfy_name"] == "job-1-image.png"
    assert loaded["data"]["bytes"] == len(_png(96, 64, (200, 10, 10)))
    # once the job is done, its input is gone from ComfyUI's input folder (ComfyUI deletes no upload)
    assert not (comfy.backend.dirs["input"] / "job-1-image.png").exists()


def test_another_input_image_gives_another_render(img2img: WorkerRuntime, storage: StorageConfig) -> None:
    _put(storage, KEY_A, _png(96, 64, (200, 10, 10)))
    _put(storage, KEY_B, _png(96, 64, (10, 10, 200)))
    first = run_job(_job(KEY_A, "job-a"), img2img)
    second = run_job(_job(KEY_B, "job-b"), img2img)
    assert "error" not in first and "error" not in second, (first, second)
    assert first["images"][0]["sha256"] != second["images"][0]["sha256"]


def test_a_missing_input_object_fails_the_job_naming_the_key(img2img: WorkerRuntime, comfy: ComfyUIEmulator,
                                                              logs: LogCapture) -> None:
    output = run_job(_job(KEY_A), img2img)
    assert set(output) == {"error"}  # no refresh_worker: the worker is fine, the job's input is not
    assert KEY_A in output["error"] and "POST /api/inputs" in output["error"]
    assert comfy.backend.history() == {}  # nothing was rendered
    assert [line["event"] for line in logs.lines()][-1] == "job_failed"


@pytest.mark.parametrize(("content_type", "said"), [("text/plain", "'text/plain'"), ("image/gif", "'image/gif'")])
def test_an_input_object_of_another_type_fails_the_job_clearly(img2img: WorkerRuntime, storage: StorageConfig,
                                                                 content_type: str, said: str) -> None:
    _put(storage, KEY_A, _png(96, 64, (1, 2, 3)), content_type)
    output = run_job(_job(KEY_A), img2img)
    assert KEY_A in output["error"] and said in output["error"] and "image/png" in output["error"]
    assert "\n" not in output["error"] and "Traceback" not in output["error"]


def test_an_input_object_over_the_size_limit_fails_the_job_clearly(img2img: WorkerRuntime, storage: StorageConfig,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    data = _png(96, 64, (1, 2, 3))
    monkeypatch.setattr(storage_module, "MAX_INPUT_BYTES", len(data) - 1)
    _put(storage, KEY_A, data)
    output = run_job(_job(KEY_A), img2img)
    assert KEY_A in output["error"] and f"{len(data)} bytes" in output["error"]
    assert f"limit of {len(data) - 1}" in output["error"]


def test_an_image_value_that_is_not_an_input_key_is_refused_before_anything_is_read(
        img2img: WorkerRuntime, logs: LogCapture) -> None:
    output = run_job(_job("../results/other-job/0.png"), img2img)
    assert "input 'image' must be the key of an uploaded input image" in output["error"]
    assert "job_rejected" in [line["event"] for line in logs.lines()]


@pytest.mark.parametrize(("field", "value"), [("default", "inputs/" + "c" * 32 + ".png"), ("min", 1), ("max", 10),
                                              ("choices", ["a.png"])])
def test_a_workflow_file_giving_an_image_parameter_a_default_bound_or_list_is_refused(field: str, value: Any) -> None:
    raw = copy.deepcopy(WORKFLOW)
    raw["parameters"][0][field] = value
    with pytest.raises(WorkflowError) as refused:
        parse_workflow(raw, "workflows/sdxl-img2img.json")
    assert f"parameters[0] (image).{field} must be null for a parameter of type image" in str(refused.value)


def test_a_workflow_file_with_an_optional_image_parameter_is_refused() -> None:
    raw = copy.deepcopy(WORKFLOW)
    raw["parameters"][0]["required"] = False
    with pytest.raises(WorkflowError, match=r"parameters\[0\] \(image\)\.required must be true"):
        parse_workflow(raw, "workflows/sdxl-img2img.json")


class _UploadAnswer(ComfyProxy):
    """Answers POST /upload/image itself with `answer` (what another ComfyUI, or a proxy in front of it, says)."""

    def __init__(self, upstream: str, status: int, answer: bytes) -> None:
        super().__init__(upstream)
        self.status, self.answer_body, self.forms = status, answer, []

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> None:
        if handler.path != "/upload/image":
            return super()._handle(handler, body)
        self.forms.append((handler.headers["Content-Type"], body))
        send(handler, self.status, self.answer_body, "application/json")


def test_the_upload_is_comfyuis_multipart_form_and_a_subfolder_in_its_answer_is_kept(comfy: ComfyUIEmulator) -> None:
    proxy = _UploadAnswer(comfy.url, 200, json.dumps({"name": "x.png", "subfolder": "jobs", "type": "input"}).encode())
    try:
        assert ComfyClient(proxy.url).upload_image("job-1-image.png", b"\x89PNG data", "image/png") == "jobs/x.png"
    finally:
        proxy.stop()
    [(content_type, body)] = proxy.forms
    assert content_type.startswith("multipart/form-data; boundary=")
    assert b'name="image"; filename="job-1-image.png"' in body and b"\x89PNG data" in body
    assert b'name="type"\r\n\r\ninput' in body and b'name="overwrite"\r\n\r\ntrue' in body


def test_an_upload_comfyui_refuses_fails_naming_the_file(comfy: ComfyUIEmulator) -> None:
    proxy = _UploadAnswer(comfy.url, 400, b"")
    try:
        with pytest.raises(ComfyError, match=r"POST /upload/image of job-1-image\.png answered HTTP 400"):
            ComfyClient(proxy.url).upload_image("job-1-image.png", b"\x89PNG data", "image/png")
    finally:
        proxy.stop()


def test_comfyui_refusing_an_uploaded_input_is_not_blamed_on_the_parameters_bounds() -> None:
    workflow = parse_workflow(copy.deepcopy(WORKFLOW))
    rejected = PromptRejected({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed "
                               "validation", "details": "", "extra_info": {}},
                              {"10": {"class_type": "LoadImage", "dependent_outputs": ["9"], "errors": [
                                  {"type": "custom_validation_failed", "message": "Custom validation failed for node",
                                   "details": "image - Invalid image file: job-1-image.png",
                                   "extra_info": {"input_name": "image", "received_value": "job-1-image.png"}}]}})
    graph = copy.deepcopy(workflow.graph)
    graph["10"]["inputs"]["image"] = "job-1-image.png"
    line = explain_rejection(rejected, graph, (), None, workflow, {"image": KEY_A, "prompt": "x", "denoise": 0.6})
    assert "Invalid image file: job-1-image.png" in line and "image parameter 'image'" in line and KEY_A in line
    assert "POST /upload/image" in line and "make its default" not in line


def test_a_name_comfyui_answers_out_of_its_input_folder_is_never_removed(
        comfy: ComfyUIEmulator, models_dir: Path, storage: StorageConfig,
        runtime_factory: Callable[..., WorkerRuntime]) -> None:
    outside = comfy.backend.dirs["input"].parent / "outside.png"
    outside.write_bytes(b"not the job's")
    proxy = _UploadAnswer(comfy.url, 200, json.dumps({"name": "../outside.png", "subfolder": "",
                                                      "type": "input"}).encode())
    try:
        runtime = runtime_factory(proxy.url, models_dir,
                                  COMFY_INPUT_DIR=str(comfy.backend.dirs["input"]))
        workflow = parse_workflow(copy.deepcopy(WORKFLOW))
        runtime = dataclasses.replace(runtime, workflows={workflow.id: workflow})
        _put(storage, KEY_A, _png(96, 64, (1, 2, 3)))
        output = run_job(_job(KEY_A), runtime)
    finally:
        proxy.stop()
    assert "Invalid image file: ../outside.png" in output["error"]
    assert outside.read_bytes() == b"not the job's"
