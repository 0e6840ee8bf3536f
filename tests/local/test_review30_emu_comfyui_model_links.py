"""Review 30 (emu): ComfyUI lists a loader's folder with os.walk(followlinks=True) (folder_paths.recursive_search) and
keeps every entry that is not a directory. So a model in a linked subfolder (`checkpoints/sdxl -> /mnt/sdxl`) is
listed as `sdxl/<file>`, and a symbolic link whose target is gone (a network volume not attached) is listed too: the
prompt passes validation, and the job fails when the loader opens the file, with folder_paths.get_full_path_or_raise's
`Model in folder 'checkpoints' with filename '<file>' not found.` The emulator listed with pathlib's rglob and
is_file, so it entered no linked folder and dropped the broken link: a workflow author on the local target saw
`not in []` at validation where ComfyUI takes the prompt and fails the job, and a linked model folder listed nothing."""

from __future__ import annotations

import copy
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from comfy_support import comfyui, prompt_graph

from goldgate.local.comfyui import ComfyUIEmulator
from images.worker.comfy_client import ComfyClient, ComfyExecutionError

CHECKPOINT = "base.safetensors"


def _listed(comfy: ComfyUIEmulator, node: str = "CheckpointLoaderSimple", name: str = "ckpt_name") -> list[str]:
    with urllib.request.urlopen(f"{comfy.url}/object_info/{node}", timeout=10) as resp:
        return json.loads(resp.read())[node]["input"]["required"][name][0]


def _run(comfy: ComfyUIEmulator, graph: dict[str, Any]) -> list[Any]:
    client = ComfyClient(comfy.url, 0.02)
    return client.wait_for_outputs(client.queue_prompt(graph, "t"), 20)


def _history(comfy: ComfyUIEmulator, prompt_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{comfy.url}/history/{prompt_id}", timeout=10) as resp:
        return json.loads(resp.read())[prompt_id]


def test_a_broken_link_is_listed_validates_and_fails_the_job_at_its_loader_with_comfyuis_words(tmp_path: Path) -> None:
    with comfyui(tmp_path) as comfy:
        gone = tmp_path / "volume" / "sdxl.safetensors"  # a network volume that is not attached
        (tmp_path / "models" / "checkpoints" / "sdxl.safetensors").symlink_to(gone)
        assert _listed(comfy) == [CHECKPOINT, "sdxl.safetensors"]
        graph = prompt_graph()
        graph["4"]["inputs"]["ckpt_name"] = "sdxl.safetensors"
        client = ComfyClient(comfy.url, 0.02)
        prompt_id = client.queue_prompt(graph, "t")  # validation passes: ComfyUI listed the name
        with pytest.raises(ComfyExecutionError) as failed:
            client.wait_for_outputs(prompt_id, 20)
        assert ("node 4 (CheckpointLoaderSimple): FileNotFoundError: Model in folder 'checkpoints' with filename "
                "'sdxl.safetensors' not found.") in str(failed.value), failed.value
        entry = _history(comfy, prompt_id)
        assert entry["status"]["status_str"] == "error" and entry["outputs"] == {}, entry["status"]
        kind, info = entry["status"]["messages"][-1]
        assert kind == "execution_error" and info["node_id"] == "4" and info["node_type"] == "CheckpointLoaderSimple"
        assert info["exception_type"] == "FileNotFoundError" and info["traceback"], info
        assert info["current_inputs"] == {"ckpt_name": ["sdxl.safetensors"]}, info
        # the queue goes on: the next prompt, over the real file, renders
        assert _run(comfy, prompt_graph())


def test_a_model_in_a_linked_subfolder_is_listed_under_it_and_renders(tmp_path: Path) -> None:
    with comfyui(tmp_path) as comfy:
        elsewhere = tmp_path / "mnt" / "sdxl"
        elsewhere.mkdir(parents=True)
        (elsewhere / "xl.safetensors").write_bytes(b"x")
        (tmp_path / "models" / "checkpoints" / "sdxl").symlink_to(elsewhere, target_is_directory=True)
        assert _listed(comfy) == [CHECKPOINT, "sdxl/xl.safetensors"]
        graph = prompt_graph()
        graph["4"]["inputs"]["ckpt_name"] = "sdxl/xl.safetensors"
        assert len(_run(comfy, graph)) == 1


def test_a_broken_link_in_one_directory_of_a_folder_loads_the_file_of_the_next(tmp_path: Path) -> None:
    # ComfyUI's get_full_path skips a link that points nowhere and looks in the folder's next directory
    # (text_encoders, then clip): alone the link fails the job; with the file in clip the job renders.
    with comfyui(tmp_path) as comfy:
        models = tmp_path / "models"
        (models / "text_encoders").mkdir()
        (models / "text_encoders" / "t5.safetensors").symlink_to(tmp_path / "gone.safetensors")
        assert _listed(comfy, "CLIPLoader", "clip_name") == ["t5.safetensors"]
        graph = copy.deepcopy(prompt_graph())
        graph["10"] = {"class_type": "CLIPLoader", "inputs": {"clip_name": "t5.safetensors", "type": "sd3"}}
        graph["6"]["inputs"]["clip"] = ["10", 0]
        with pytest.raises(ComfyExecutionError, match=r"node 10 \(CLIPLoader\): FileNotFoundError: Model in folder "
                                                      r"'text_encoders' with filename 't5.safetensors' not found\."):
            _run(comfy, graph)
        (models / "clip").mkdir()
        (models / "clip" / "t5.safetensors").write_bytes(b"x")
        assert _listed(comfy, "CLIPLoader", "clip_name") == ["t5.safetensors"]  # one name for both
        assert len(_run(comfy, graph)) == 1


def test_a_lora_at_zero_strength_opens_no_file_and_one_at_strength_fails_on_a_broken_link(tmp_path: Path) -> None:
    with comfyui(tmp_path) as comfy:
        loras = tmp_path / "models" / "loras"
        loras.mkdir()
        (loras / "style.safetensors").symlink_to(tmp_path / "gone.safetensors")
        assert _listed(comfy, "LoraLoaderModelOnly", "lora_name") == ["style.safetensors"]
        graph = prompt_graph()
        graph["11"] = {"class_type": "LoraLoaderModelOnly",
                       "inputs": {"model": ["4", 0], "lora_name": "style.safetensors", "strength_model": 0.0}}
        graph["3"]["inputs"]["model"] = ["11", 0]
        assert len(_run(comfy, graph)) == 1  # nodes.py: a LoRA at strength 0 hands the model on untouched
        graph["11"]["inputs"]["strength_model"] = 0.8
        with pytest.raises(ComfyExecutionError, match=r"node 11 \(LoraLoaderModelOnly\): FileNotFoundError: Model in "
                                                      r"folder 'loras' with filename 'style.safetensors' not found\."):
            _run(comfy, graph)
