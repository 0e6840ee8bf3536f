"""A checkpoint in a subfolder (`checkpoints/sdxl/<name>`) is listed by ComfyUI as `sdxl/<name>`, so a workflow
naming `<name>` does not find it; before, doctor and the first aid said only "not found". A dangling symbolic link
in the model's place was reported "not found" too, without saying it is a broken link."""

from __future__ import annotations

from pathlib import Path

from worker_harness import WORKER_DIR, bake_models

from images.worker.comfy_client import PromptRejected
from images.worker.first_aid import explain_rejection
from images.worker.preflight import run_preflight

MANIFEST = WORKER_DIR / "models.yaml"
WORKFLOWS = WORKER_DIR / "workflows"
CHECKPOINT = "sd_xl_base_1.0.safetensors"
GRAPH = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}}}


def _rejected(listed: list[str]) -> PromptRejected:
    return PromptRejected({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                           "details": "", "extra_info": {}},
                          {"4": {"class_type": "CheckpointLoaderSimple", "dependent_outputs": ["9"], "errors": [
                              {"type": "value_not_in_list", "message": "Value not in list",
                               "details": f"ckpt_name: '{CHECKPOINT}' not in {listed}",
                               "extra_info": {"input_name": "ckpt_name", "input_config": [listed, {}],
                                              "received_value": CHECKPOINT}}]}})


def _checkpoint(report):
    [check] = [m for m in report.models if m.file == CHECKPOINT]
    return check


def _in_subfolder(tmp_path: Path) -> Path:
    models = bake_models(tmp_path / "models", skip=(CHECKPOINT,))
    (models / "checkpoints" / "sdxl").mkdir(parents=True)
    (models / "checkpoints" / "sdxl" / CHECKPOINT).write_bytes(bytes(64))
    return models


def test_doctor_says_where_a_checkpoint_in_a_subfolder_is_and_the_name_the_workflow_must_use(tmp_path: Path):
    models = _in_subfolder(tmp_path)
    check = _checkpoint(run_preflight(MANIFEST, WORKFLOWS, [models]))
    assert check.status == "missing"
    assert str(models / "checkpoints" / "sdxl" / CHECKPOINT) in check.message, check.message
    assert f"'sdxl/{CHECKPOINT}'" in check.message
    assert f"move the file up into {models / 'checkpoints'}" in check.message


def test_first_aid_says_where_a_checkpoint_in_a_subfolder_is_and_the_name_the_workflow_must_use(tmp_path: Path):
    models = _in_subfolder(tmp_path)
    message = explain_rejection(_rejected([f"sdxl/{CHECKPOINT}"]), GRAPH, (str(models),))
    assert str(models / "checkpoints" / "sdxl" / CHECKPOINT) in message, message
    assert f"the workflow must name it 'sdxl/{CHECKPOINT}'" in message


def test_a_dangling_symlink_in_the_models_place_is_named_a_broken_link(tmp_path: Path):
    models = bake_models(tmp_path / "models", skip=(CHECKPOINT,))
    gone = tmp_path / "volume" / CHECKPOINT  # a network volume not attached
    (models / "checkpoints").mkdir(exist_ok=True)
    (models / "checkpoints" / CHECKPOINT).symlink_to(gone)
    check = _checkpoint(run_preflight(MANIFEST, WORKFLOWS, [models]))
    assert check.status == "missing"
    assert f"{models / 'checkpoints' / CHECKPOINT} -> {gone} is a broken symbolic link" in check.message, check.message
    message = explain_rejection(_rejected([]), GRAPH, (str(models),))
    assert f"{models / 'checkpoints' / CHECKPOINT} -> {gone} is a broken symbolic link" in message, message
