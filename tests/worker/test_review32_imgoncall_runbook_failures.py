"""The failures an img2img client meets once its upload was taken, as the on-call engineer sees them: the job's
`error` (the worker's `job_failed` line) from the real worker against the ComfyUI emulator, and the render's size.
Each one is found, by the words of that error, in docs/RUNBOOK.md's "A job with an input image", and the bullet
there says what to send instead; docs/LOG_EVENTS.md's `job_failed` row sends the engineer there rather than to a
rollback. Before, an image under 8 pixels (VAEEncode), one ComfyUI cannot decode (LoadImage), a render turned by
EXIF orientation and the resubmission of an expired upload (its Idempotency-Key) were in neither."""

from __future__ import annotations

import copy
import dataclasses
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from test_review32_inputwk_input_images import KEY_A, WORKFLOW, _job, _png, _put

from goldgate.local.comfyui import ComfyUIEmulator
from images.worker.comfy_client import PromptRejected
from images.worker.config import StorageConfig
from images.worker.first_aid import explain_rejection
from images.worker.handler import WorkerRuntime, run_job
from images.worker.workflows import parse_workflow

DOCS = Path(__file__).resolve().parents[2] / "docs"
SECTION = "A job with an input image"


def _bullets() -> list[str]:
    """The section's bullets, each as one line of text (its wrapped lines joined)."""
    text = (DOCS / "RUNBOOK.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {SECTION}\n")
    section = text[start:text.index("\n## ", start + 1)]
    return [" ".join(b.split()) for b in re.split(r"\n- ", section)[1:]]


def _bullet_for(phrase: str) -> str:
    found = [b for b in _bullets() if phrase in b]
    assert found, f"RUNBOOK, {SECTION!r}: no bullet quotes {phrase!r}, which the job's error says"
    return found[0]


@pytest.fixture
def img2img(comfy: ComfyUIEmulator, models_dir: Path, runtime_factory: Callable[..., WorkerRuntime]) -> WorkerRuntime:
    runtime = runtime_factory(comfy.url, models_dir, COMFY_OUTPUT_DIR=str(comfy.output_dir),
                              COMFY_INPUT_DIR=str(comfy.backend.dirs["input"]))
    workflow = parse_workflow(copy.deepcopy(WORKFLOW))
    return dataclasses.replace(runtime, workflows={workflow.id: workflow})


def test_an_image_under_8_pixels_fails_at_vaeencode_and_the_runbook_says_to_send_8_by_8(
        img2img: WorkerRuntime, storage: StorageConfig) -> None:
    _put(storage, KEY_A, _png(4, 4, (200, 10, 10)))
    error = run_job(_job(KEY_A), img2img)["error"]
    assert "(VAEEncode)" in error and "4x4 pixels" in error
    bullet = _bullet_for("(VAEEncode)")
    assert "8 pixels" in bullet and "at least 8 x 8" in bullet


def test_a_file_comfyui_cannot_decode_fails_at_loadimage_and_the_runbook_says_to_save_and_upload_again(
        img2img: WorkerRuntime, storage: StorageConfig) -> None:
    _put(storage, KEY_A, b"<html>not an image</html>")  # stored as image/png by something else than the service
    error = run_job(_job(KEY_A), img2img)["error"]
    assert "(LoadImage)" in error and "cannot identify image file" in error
    bullet = _bullet_for("cannot identify image file")
    assert "(LoadImage)" in bullet and "save it again" in bullet and "upload it" in bullet


def test_an_expired_upload_fails_the_job_and_the_runbook_says_to_resubmit_under_a_new_idempotency_key(
        img2img: WorkerRuntime) -> None:
    error = run_job(_job(KEY_A), img2img)["error"]  # deleted between the create and the worker's read
    assert f"input image {KEY_A} is not in bucket" in error
    bullet = _bullet_for("is not in bucket")
    assert "Upload the image again" in bullet and "new `Idempotency-Key`" in bullet
    assert "`goldgate recover` changes nothing" in bullet


def test_a_jpeg_turned_by_its_exif_orientation_renders_other_than_its_upload_and_the_runbook_says_why(
        img2img: WorkerRuntime, storage: StorageConfig) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view, as a phone's portrait photo
    out = io.BytesIO()
    Image.new("RGB", (96, 64), (10, 100, 200)).save(out, "JPEG", exif=exif.tobytes())
    key = "inputs/" + "c" * 32 + ".jpg"
    _put(storage, key, out.getvalue(), "image/jpeg")
    [image] = run_job(_job(key), img2img)["images"]
    assert (image["width"], image["height"]) == (64, 96)  # the upload answered 96 x 64, its header's
    bullet = _bullet_for("EXIF orientation")
    assert "not the size the upload answered" in bullet and "multiple of 8" in bullet


def test_the_log_events_job_failed_row_sends_an_input_image_failure_to_the_runbook_not_to_a_rollback() -> None:
    row = next(line for line in (DOCS / "LOG_EVENTS.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| `job_failed` |"))
    assert f'RUNBOOK, "{SECTION}"' in row
    assert "LoadImage" in row and "VAEEncode" in row and "no rollback" in row


def test_comfyui_missing_a_just_uploaded_input_tells_to_send_the_job_again_and_blames_no_input_directory() -> None:
    workflow = parse_workflow(copy.deepcopy(WORKFLOW))
    rejected = PromptRejected({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed "
                               "validation", "details": "", "extra_info": {}},
                              {"10": {"class_type": "LoadImage", "errors": [
                                  {"type": "custom_validation_failed", "message": "Custom validation failed for node",
                                   "details": "image - Invalid image file: job-1-image.png",
                                   "extra_info": {"input_name": "image", "received_value": "job-1-image.png"}}]}})
    graph = copy.deepcopy(workflow.graph)
    graph["10"]["inputs"]["image"] = "job-1-image.png"
    line = explain_rejection(rejected, graph, (), None, workflow, {"image": KEY_A, "prompt": "x", "denoise": 0.6})
    # ComfyUI uploads into and loads from the one input directory: --input-directory cannot part them
    assert "--input-directory" not in line
    assert "send the job again" in line and "COMFY_URL" in line and KEY_A in line
