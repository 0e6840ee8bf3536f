"""Review 30 (wfa): a workflow author's new workflow that ComfyUI refuses failed its golden case with ComfyUI's words
alone (`node 10 (CLIPSetLastLayer): Value 2 bigger than max of -1: stop_at_clip_layer`, `node 8 (VAEDecode): Return
type mismatch between linked nodes: vae, received_type(CLIP) mismatch input_type(VAE)`): nothing said which
parameter or link of which workflow file set the refused input, nor that the default (not the job) sent it. The job's
error now says where the value came from and what to change. Real handler, the ComfyUI emulator's own refusals."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from worker_harness import WORKER_DIR, bake_models, job

from images.worker.comfy_client import PromptRejected
from images.worker.first_aid import explain_rejection
from images.worker.handler import run_job
from images.worker.preflight import run_preflight
from images.worker.workflows import parse_workflow

SDXL = "sd_xl_base_1.0.safetensors"


def _workflow(*, clip_skip_default: int = -1, vae_link: list[Any] | None = None, denoise: float = 1.0
              ) -> dict[str, Any]:
    """A team's SDXL workflow with a clip-skip parameter, as an author writes it after exporting from ComfyUI."""
    return {
        "id": "team-sdxl", "version": "team-sdxl@1.0.0", "description": "SDXL with clip skip",
        "parameters": [
            {"name": "prompt", "type": "string", "required": True, "default": None, "min": 1, "max": 2000,
             "choices": None, "node": "6", "input": "text"},
            # A1111 users write clip skip as 2; ComfyUI's stop_at_clip_layer takes -24..-1.
            {"name": "clip_skip", "type": "integer", "required": False, "default": clip_skip_default, "min": -24,
             "max": 12, "choices": None, "node": "10", "input": "stop_at_clip_layer"}],
        "graph": {
            "3": {"class_type": "KSampler", "inputs": {
                "seed": 1, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
                "denoise": denoise, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                "latent_image": ["5", 0]}},
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": SDXL}},
            "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
            "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["10", 0]}},
            "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["10", 0]}},
            "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": vae_link or ["4", 2]}},
            "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "team", "images": ["8", 0]}},
            "10": {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": -1, "clip": ["4", 1]}},
        }}


def _error(comfy: Any, models_dir: Any, runtime_factory: Any, raw: dict[str, Any],
           inputs: dict[str, Any] | None = None) -> str:
    workflow = parse_workflow(copy.deepcopy(raw), "team-sdxl.json")
    runtime = dataclasses.replace(runtime_factory(comfy.url, models_dir), workflows={workflow.id: workflow})
    output = run_job(job({"prompt": "a glass bottle", **(inputs or {})}, workflow=workflow.id), runtime)
    assert "error" in output, output
    return output["error"]


def test_a_parameter_default_comfyui_refuses_names_the_parameter_its_default_and_the_file(
        comfy: Any, models_dir: Any, runtime_factory: Any) -> None:
    error = _error(comfy, models_dir, runtime_factory, _workflow(clip_skip_default=2))
    # ComfyUI's own words first, as before
    assert "node 10 (CLIPSetLastLayer): Value 2 bigger than max of -1: stop_at_clip_layer" in error, error
    assert "parameter 'clip_skip' of team-sdxl@1.0.0 (the workflow's default, 2)" in error, error
    assert "images/worker/workflows/team-sdxl.json" in error and "default, min, max" in error, error


def test_a_job_value_the_parameter_lets_through_is_named_as_the_jobs(comfy: Any, models_dir: Any,
                                                                     runtime_factory: Any) -> None:
    error = _error(comfy, models_dir, runtime_factory, _workflow(), {"clip_skip": 3})
    assert "parameter 'clip_skip' of team-sdxl@1.0.0 (this job's value, 3)" in error, error


def test_a_link_to_the_wrong_output_names_the_link_and_its_source_node(comfy: Any, models_dir: Any,
                                                                       runtime_factory: Any) -> None:
    error = _error(comfy, models_dir, runtime_factory, _workflow(vae_link=["10", 0]))
    assert "Return type mismatch" in error, error
    assert "links node 8 input vae to node 10 output 0 (CLIPSetLastLayer)" in error, error
    assert "images/worker/workflows/team-sdxl.json" in error, error


def test_a_literal_of_the_graph_no_parameter_sets_is_named_as_the_graphs(comfy: Any, models_dir: Any,
                                                                        runtime_factory: Any) -> None:
    error = _error(comfy, models_dir, runtime_factory, _workflow(denoise=1.5))
    assert "node 3 (KSampler): Value 1.5 bigger than max of 1.0: denoise" in error, error
    assert "no parameter sets it: the value 1.5 is team-sdxl@1.0.0's graph as shipped; fix node 3 in " \
           "images/worker/workflows/team-sdxl.json" in error, error


def test_a_model_comfyui_listed_but_cannot_open_says_a_link_whose_target_is_gone(
        comfy: Any, models_dir: Any, runtime_factory: Any, monkeypatch: Any) -> None:
    # Real ComfyUI lists a symbolic link whose target is gone (folder_paths walks with os.walk), so the prompt
    # validates and the loader fails at run time with folder_paths.get_full_path_or_raise's words: the job's error
    # said only that, with none of the first aid the worker gives for a model the loader does not list.
    def a_link_to_an_unattached_volume(*args: Any, **kwargs: Any) -> None:
        raise FileNotFoundError(f"Model in folder 'checkpoints' with filename '{SDXL}' not found.")

    monkeypatch.setattr(comfy.backend, "render", a_link_to_an_unattached_volume)
    out = run_job(job(), runtime_factory(comfy.url, models_dir))
    assert f"FileNotFoundError: Model in folder 'checkpoints' with filename '{SDXL}' not found." in out["error"], out
    assert "a symbolic link in its place whose target is gone (a network volume not attached" in out["error"], out
    assert "goldgate doctor" in out["error"], out


def test_a_model_in_a_linked_subfolder_is_named_by_the_name_comfyui_lists_it_under(tmp_path: Any) -> None:
    # ComfyUI walks a loader's folder into linked subfolders (os.walk, followlinks=True): `checkpoints/sdxl` linked
    # to a directory elsewhere lists as `sdxl/<file>`, and a workflow naming `<file>` is refused `not in
    # ['sdxl/<file>']`. The first aid walked with pathlib's rglob, which does not enter a linked folder, and said
    # nothing of where the file was nor the name to use.
    models = bake_models(tmp_path / "models", skip=(SDXL,))
    elsewhere = tmp_path / "volume" / "sdxl"
    elsewhere.mkdir(parents=True)
    (elsewhere / SDXL).write_bytes(bytes(64))
    (models / "checkpoints").mkdir(exist_ok=True)
    (models / "checkpoints" / "sdxl").symlink_to(elsewhere, target_is_directory=True)
    listed = [f"sdxl/{SDXL}"]
    rejected = PromptRejected(
        {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "",
         "extra_info": {}},
        {"4": {"class_type": "CheckpointLoaderSimple", "dependent_outputs": ["9"], "errors": [
            {"type": "value_not_in_list", "message": "Value not in list", "details": f"ckpt_name: '{SDXL}' not in "
             f"{listed}", "extra_info": {"input_name": "ckpt_name", "input_config": [listed, {}],
                                         "received_value": SDXL}}]}})
    graph = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": SDXL}}}
    message = explain_rejection(rejected, graph, (str(models),))
    assert f"the workflow must name it 'sdxl/{SDXL}'" in message, message
    [check] = [m for m in run_preflight(WORKER_DIR / "models.yaml", WORKER_DIR / "workflows", [models]).models
               if m.file == SDXL]
    assert check.status == "missing" and f"'sdxl/{SDXL}'" in check.message, check.message
