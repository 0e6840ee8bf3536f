"""The ComfyUI emulator's SaveImage places files as ComfyUI's folder_paths.get_save_image_path does: the
prefix is normalised, its directory is the subfolder, and a prefix leading out of the output directory fails
the node, so a workflow that cannot save on a real worker cannot pass locally."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_harness import wait_for

from goldgate.local.comfyui import ComfyUIEmulator


@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[httpx.Client]:
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "base.safetensors").write_bytes(b"x")
    emulator = ComfyUIEmulator(models, tmp_path / "out", log_stream=io.StringIO()).start()
    assert emulator.wait_listening(10)
    with httpx.Client(base_url=emulator.url, timeout=30) as client:
        yield client
    emulator.stop()


def _graph(prefix: str) -> dict[str, Any]:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "base.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "model": ["4", 0], "seed": 1, "steps": 1, "cfg": 7.0, "sampler_name": "euler",
            "scheduler": "normal", "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["5", 0],
            "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": prefix}},
    }


def _run(comfy: httpx.Client, prefix: str) -> dict[str, Any]:
    accepted = comfy.post("/prompt", json={"prompt": _graph(prefix)})
    assert accepted.status_code == 200, accepted.text
    prompt_id = accepted.json()["prompt_id"]
    return wait_for(lambda: comfy.get(f"/history/{prompt_id}").json().get(prompt_id), "the prompt to finish", 30)


@pytest.mark.parametrize("prefix", ["../escape", "run-1/../../escape", "/tmp/escape"])
def test_a_prefix_leading_out_of_the_output_folder_fails_the_save_node(comfy: httpx.Client, tmp_path: Path,
                                                                       prefix: str) -> None:
    entry = _run(comfy, prefix)
    assert entry["status"]["status_str"] == "error" and entry["outputs"] == {}
    kind, info = entry["status"]["messages"][-1]
    assert kind == "execution_error" and info["node_id"] == "9" and info["node_type"] == "SaveImage"
    assert "Saving image outside the output folder is not allowed" in info["exception_message"]
    assert not list(tmp_path.glob("**/escape_*.png")) and not list(Path("/tmp").glob("escape_*_.png"))


@pytest.mark.parametrize("prefix, subfolder, filename", [
    ("run-1/goldgate", "run-1", "goldgate_00001_.png"),
    ("run-1/../goldgate", "", "goldgate_00001_.png"),  # normalised: the '..' cancels run-1
    ("run-1/./a b", "run-1", "a b_00001_.png"),  # ComfyUI keeps the name as given
])
def test_the_saved_image_is_where_comfyui_would_put_it(comfy: httpx.Client, prefix: str, subfolder: str,
                                                      filename: str) -> None:
    entry = _run(comfy, prefix)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert entry["outputs"]["9"]["images"] == [{"filename": filename, "subfolder": subfolder, "type": "output"}]
    view = comfy.get("/view", params={"filename": filename, "subfolder": subfolder, "type": "output"})
    assert view.status_code == 200 and view.content.startswith(b"\x89PNG")
