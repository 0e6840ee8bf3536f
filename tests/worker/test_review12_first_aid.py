"""First aid for the real causes behind "No checkpoint models appear to be available" and its kin: a Git LFS pointer,
a web page or a cut-short download in a model's place, a file or folder the worker's user cannot read, a model under
a name ComfyUI's loaders skip. Each must be named, not reported as fine or as a missing model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from worker_harness import WORKER_DIR, as_another_user, bake_models, job, open_tree

from images.worker.comfy_client import PromptRejected
from images.worker.first_aid import explain_rejection
from images.worker.handler import run_job
from images.worker.preflight import run_preflight

MANIFEST = WORKER_DIR / "models.yaml"
WORKFLOWS = WORKER_DIR / "workflows"
LORA = "flux_realism_lora.safetensors"  # models.yaml pins neither its size nor its sha256
CHECKPOINT = "sd_xl_base_1.0.safetensors"
LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b\nsize 6938078334\n")


def _safetensors(data_bytes: int = 64) -> bytes:
    """A well-formed safetensors file: the header's length, the JSON header placing one tensor, its data."""
    header = json.dumps({"__metadata__": {"format": "pt"},
                         "lora_unet.weight": {"dtype": "F32", "shape": [data_bytes // 4],
                                              "data_offsets": [0, data_bytes]}}).encode()
    return len(header).to_bytes(8, "little") + header + bytes(range(256))[:data_bytes]


def _check(report, file: str):
    [check] = [m for m in report.models if m.file == file]
    return check


def test_a_git_lfs_pointer_in_place_of_an_unpinned_model_is_named(tmp_path: Path):
    # A clone without `git lfs pull`: ComfyUI lists the file and the job that loads it fails. Without a pinned size
    # to compare, the old preflight called the 130-byte pointer fine.
    models = bake_models(tmp_path / "models")
    (models / "loras" / LORA).write_bytes(LFS_POINTER)
    report = run_preflight(MANIFEST, WORKFLOWS, [models])
    assert not report.ok
    check = _check(report, LORA)
    assert check.status == "not_a_model"
    assert "Git LFS pointer" in check.message and "git lfs pull" in check.message


def test_a_git_lfs_pointer_in_place_of_a_pinned_checkpoint_is_named_as_one(tmp_path: Path):
    models = bake_models(tmp_path / "models")
    (models / "checkpoints" / CHECKPOINT).write_bytes(LFS_POINTER)
    check = _check(run_preflight(MANIFEST, WORKFLOWS, [models]), CHECKPOINT)
    assert "Git LFS pointer" in check.message, check.message


def test_a_cut_short_safetensors_file_is_named_even_without_a_pinned_size(tmp_path: Path):
    models = bake_models(tmp_path / "models")
    whole = _safetensors()
    (models / "loras" / LORA).write_bytes(whole)
    assert run_preflight(MANIFEST, WORKFLOWS, [models]).ok, "a complete file must pass"
    (models / "loras" / LORA).write_bytes(whole[:-10])
    report = run_preflight(MANIFEST, WORKFLOWS, [models])
    assert not report.ok
    check = _check(report, LORA)
    assert check.status == "not_a_model"
    assert f"places {len(whole)} bytes, the file has {len(whole) - 10}" in check.message, check.message


def test_a_web_page_saved_in_place_of_a_model_is_named(tmp_path: Path):
    # A download that needed a login (a gated model) saves the login page under the model's name.
    models = bake_models(tmp_path / "models")
    (models / "loras" / LORA).write_bytes(b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>\n")
    check = _check(run_preflight(MANIFEST, WORKFLOWS, [models]), LORA)
    assert check.status == "not_a_model"
    assert "is not a safetensors file (it starts '<!DOCTYPE html>" in check.message, check.message


def test_a_model_the_worker_user_cannot_read_is_unreadable_not_ok():
    # COPY keeps a host file's mode: a root-owned 600 model is listed by ComfyUI, and the job that loads it fails.
    with open_tree() as top:
        models = bake_models(top / "models")
        for path in (models, *models.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (models / "vae" / "ae.safetensors").chmod(0o600 if os.geteuid() == 0 else 0o000)
        with as_another_user():
            report = run_preflight(MANIFEST, WORKFLOWS, [models])
    assert not report.ok
    check = _check(report, "ae.safetensors")
    assert check.status == "unreadable", check
    assert "bake models mode 644" in check.message


def _rejected(file: str) -> PromptRejected:
    return PromptRejected({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                           "details": "", "extra_info": {}},
                          {"4": {"class_type": "CheckpointLoaderSimple", "dependent_outputs": ["9"], "errors": [
                              {"type": "value_not_in_list", "message": "Value not in list",
                               "details": f"ckpt_name: '{file}' not in []",
                               "extra_info": {"input_name": "ckpt_name", "input_config": [[], {}],
                                              "received_value": file}}]}})


GRAPH = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}}}


def test_first_aid_names_a_checkpoint_folder_the_worker_user_cannot_list():
    # ComfyUI lists nothing in a folder it cannot read: "not in []", the same as an empty folder. Saying the model
    # was not baked sends the operator to rebuild an image that has it.
    with open_tree() as top:
        checkpoints = top / "checkpoints"
        checkpoints.mkdir()
        (checkpoints / CHECKPOINT).write_bytes(b"x")
        checkpoints.chmod(0o700 if os.geteuid() == 0 else 0o000)
        with as_another_user():
            message = explain_rejection(_rejected(CHECKPOINT), GRAPH, (str(top),))
    assert f"{checkpoints} cannot be listed by the worker's user" in message, message
    assert "make the directories 755" in message


def test_first_aid_names_a_model_under_a_name_the_loader_skips(tmp_path: Path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / f"{CHECKPOINT}.part").write_bytes(b"x")
    message = explain_rejection(_rejected(CHECKPOINT), GRAPH, (str(tmp_path),))
    assert f"found {tmp_path / 'checkpoints' / CHECKPOINT}.part: a name CheckpointLoaderSimple skips" in message
    assert "No checkpoint models appear to be available" in message  # still the phrase operators search for


def test_first_aid_says_when_the_asked_for_file_has_an_ending_comfyui_never_lists(tmp_path: Path):
    graph = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.gguf"}}}
    message = explain_rejection(_rejected("sdxl.gguf"), graph, (str(tmp_path),))
    assert "'sdxl.gguf' does not end in a model extension ComfyUI's loaders list" in message, message


@pytest.mark.parametrize("message", [
    # ComfyUI's words for a Git LFS pointer or a web page in a .safetensors file's place, and for a cut-short one
    ("Error while deserializing header: HeaderTooLarge\n\nFile path: /comfyui/models/loras/x.safetensors\n\n"
     "The safetensors file is corrupt or invalid."),
    "Error while deserializing header: MetadataIncompleteBuffer",
    "invalid load key, 'v'.",  # torch.load on a Git LFS pointer in a .ckpt file's place
])
def test_a_job_failing_on_a_damaged_model_file_says_what_the_file_is_and_where_to_look(
        message, comfy, models_dir, runtime_factory, monkeypatch):
    def loading_a_damaged_file(*args, **kwargs):
        raise RuntimeError(message)

    monkeypatch.setattr(comfy.backend, "render", loading_a_damaged_file)
    out = run_job(job(), runtime_factory(comfy.url, models_dir))
    assert out["error"].startswith("ComfyUI failed while running prompt"), out
    assert "not a whole model (a Git LFS pointer, a web page or a cut-short download in its place)" in out["error"]
    assert "goldgate doctor" in out["error"]
    assert "refresh_worker" not in out  # the GPU is fine: the image is what needs fixing


def test_a_missing_vae_reads_as_no_file_listed_although_comfyui_lists_its_built_in_decoders(tmp_path):
    # Current ComfyUI's VAELoader lists "pixel_space" (and the TAESD decoders when present) next to the files: names
    # of no file. A missing VAE with an empty vae folder must still read as "lists nothing", not as a list of files.
    file = "ae.safetensors"
    rejected = PromptRejected(
        {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "",
         "extra_info": {}},
        {"10": {"class_type": "VAELoader", "dependent_outputs": ["9"], "errors": [
            {"type": "value_not_in_list", "message": "Value not in list",
             "details": f"vae_name: '{file}' not in ['pixel_space', 'taesdxl']",
             "extra_info": {"input_name": "vae_name", "input_config": [["pixel_space", "taesdxl"], {}],
                            "received_value": file}}]}})
    message = explain_rejection(rejected, {"10": {"class_type": "VAELoader", "inputs": {"vae_name": file}}},
                                (str(tmp_path),))
    assert "input vae_name lists nothing" in message


def test_an_empty_model_name_names_no_file_as_a_near_miss(tmp_path):
    # A workflow input left empty: every file in the folder "starts with" the empty name.
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "put_checkpoints_here").write_text("")
    message = explain_rejection(_rejected(""), {"4": {"class_type": "CheckpointLoaderSimple",
                                                      "inputs": {"ckpt_name": ""}}}, (str(tmp_path),))
    assert "put_checkpoints_here" not in message
