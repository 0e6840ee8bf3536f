"""The ComfyUI emulator takes input images as ComfyUI does: POST /upload/image into its input folder, LoadImage listing
them in /object_info and refusing a file it does not have with ComfyUI's validation error, and an img2img graph
rendering at the input's size from the input's bytes."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from comfy_support import comfyui
from PIL import Image

from goldgate.local.comfyui import ComfyUIEmulator


def _png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


RED, BLUE = _png(96, 64, (200, 10, 10)), _png(96, 64, (10, 10, 200))


@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[ComfyUIEmulator]:
    with comfyui(tmp_path) as emulator:
        yield emulator


def _upload(comfy: ComfyUIEmulator, name: str | None, data: bytes, **fields: str) -> requests.Response:
    files = {"image": (name, data, "image/png")} if name is not None else None
    return requests.post(f"{comfy.url}/upload/image", files=files, data=fields, timeout=30)


def _listed(comfy: ComfyUIEmulator) -> list[str]:
    info = requests.get(f"{comfy.url}/object_info/LoadImage", timeout=30).json()["LoadImage"]
    return info["input"]["required"]["image"][0]


def _view(comfy: ComfyUIEmulator, name: str, subfolder: str = "") -> bytes:
    answer = requests.get(f"{comfy.url}/view", params={"filename": name, "subfolder": subfolder, "type": "input"},
                          timeout=30)
    assert answer.status_code == 200
    return answer.content


def _img2img(image: str, denoise: float = 0.6) -> dict[str, Any]:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "base.safetensors"}},
        "10": {"class_type": "LoadImage", "inputs": {"image": image}},
        "11": {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "model": ["4", 0], "seed": 1, "steps": 1, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["11", 0], "denoise": denoise}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "i2i"}},
    }


def _render(comfy: ComfyUIEmulator, graph: dict[str, Any]) -> bytes:
    answer = requests.post(f"{comfy.url}/prompt", json={"prompt": graph}, timeout=30)
    assert answer.status_code == 200, answer.text
    prompt_id = answer.json()["prompt_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        entry = requests.get(f"{comfy.url}/history/{prompt_id}", timeout=30).json().get(prompt_id)
        if entry and entry["status"]["completed"]:
            saved = entry["outputs"]["9"]["images"][0]
            return requests.get(f"{comfy.url}/view", params=saved, timeout=30).content
        assert not entry or entry["status"]["status_str"] != "error", entry
        time.sleep(0.05)
    raise AssertionError(f"prompt {prompt_id} did not finish")


def test_an_upload_is_listed_under_load_image_as_comfyui_lists_its_input_folder(comfy: ComfyUIEmulator) -> None:
    first = _upload(comfy, "job-1-image.png", RED, type="input", overwrite="true")
    assert first.status_code == 200
    assert first.json() == {"name": "job-1-image.png", "subfolder": "", "type": "input"}
    assert _view(comfy, "job-1-image.png") == RED
    _upload(comfy, "notes.txt", b"not an image")  # ComfyUI lists image files only
    info = requests.get(f"{comfy.url}/object_info", timeout=30).json()["LoadImage"]
    assert info["input"]["required"]["image"] == [["job-1-image.png"], {"image_upload": True}]
    assert info["output"] == ["IMAGE", "MASK"] and info["category"] == "image"
    assert requests.get(f"{comfy.url}/object_info", timeout=30).json()["VAEEncode"]["output"] == ["LATENT"]


def test_a_name_taken_by_other_bytes_gets_comfyuis_numbered_name_unless_overwrite(comfy: ComfyUIEmulator) -> None:
    assert _upload(comfy, "in.png", RED).json()["name"] == "in.png"
    assert _upload(comfy, "in.png", RED).json()["name"] == "in.png"  # the same bytes again: not stored twice
    assert _upload(comfy, "in.png", BLUE, overwrite="false").json() == {"name": "in (1).png", "subfolder": "",
                                                                          "type": "input"}
    assert _listed(comfy) == ["in (1).png", "in.png"]
    assert _view(comfy, "in.png") == RED and _view(comfy, "in (1).png") == BLUE
    # overwrite=true (what the worker sends) replaces the file under its own name
    assert _upload(comfy, "in.png", BLUE, overwrite="true").json()["name"] == "in.png"
    assert _view(comfy, "in.png") == BLUE and _listed(comfy) == ["in (1).png", "in.png"]


def test_an_upload_into_a_subfolder_loads_by_its_path_but_is_not_listed(comfy: ComfyUIEmulator) -> None:
    answer = _upload(comfy, "in.png", RED, subfolder="jobs/42", overwrite="true")
    assert answer.json() == {"name": "in.png", "subfolder": "jobs/42", "type": "input"}
    assert _view(comfy, "in.png", "jobs/42") == RED
    assert _listed(comfy) == []  # LoadImage lists the top of the input folder only (os.listdir)
    assert Image.open(io.BytesIO(_render(comfy, _img2img("jobs/42/in.png")))).size == (96, 64)


def test_uploads_out_of_the_input_folder_or_without_an_image_are_refused(comfy: ComfyUIEmulator,
                                                                          tmp_path: Path) -> None:
    assert _upload(comfy, None, b"", overwrite="true").status_code == 400
    assert _upload(comfy, "../evil.png", RED).status_code == 400
    assert _upload(comfy, "x.png", RED, subfolder="../../escape").status_code == 400
    assert _upload(comfy, "/tmp/evil.png", RED).status_code == 400
    assert _listed(comfy) == []
    # nothing reached a folder LoadImage could load it from, and a path out of the folder loads nothing
    answer = requests.post(f"{comfy.url}/prompt", json={"prompt": _img2img("../evil.png")}, timeout=30)
    assert answer.status_code == 400
    assert answer.json()["node_errors"]["10"]["errors"][0]["type"] == "custom_validation_failed"


def test_a_prompt_loading_an_image_it_does_not_have_is_refused_as_comfyui_refuses_it(comfy: ComfyUIEmulator) -> None:
    _upload(comfy, "there.png", RED)
    answer = requests.post(f"{comfy.url}/prompt", json={"prompt": _img2img("missing.png")}, timeout=30)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["error"]["details"] == ""  # ComfyUI lists there only the output node's own faults
    node = body["node_errors"]["10"]
    assert node["class_type"] == "LoadImage" and node["dependent_outputs"] == ["9"]
    [error] = node["errors"]
    assert error["type"] == "custom_validation_failed" and error["message"] == "Custom validation failed for node"
    assert error["details"] == "image - Invalid image file: missing.png"
    assert error["extra_info"]["input_name"] == "image" and error["extra_info"]["received_value"] == "missing.png"
    assert error["extra_info"]["input_config"] == [["there.png"], {"image_upload": True}]


def test_an_img2img_render_has_the_inputs_size_and_changes_with_its_bytes(comfy: ComfyUIEmulator) -> None:
    _upload(comfy, "a.png", RED)
    _upload(comfy, "b.png", BLUE)
    _upload(comfy, "tall.png", _png(40, 120, (0, 200, 0)))
    red = _render(comfy, _img2img("a.png"))
    assert Image.open(io.BytesIO(red)).size == (96, 64)
    assert Image.open(io.BytesIO(_render(comfy, _img2img("tall.png")))).size == (40, 120)
    assert _render(comfy, _img2img("a.png")) == red  # deterministic
    assert _render(comfy, _img2img("b.png")) != red
    assert _render(comfy, _img2img("a.png", denoise=0.3)) != red
    # the same name holding other bytes (the worker's overwrite on a job's run again) renders from the new bytes
    _upload(comfy, "a.png", BLUE, overwrite="true")
    assert _render(comfy, _img2img("a.png")) != red


def test_a_listed_input_that_is_not_an_image_fails_load_image_when_the_prompt_runs(comfy: ComfyUIEmulator) -> None:
    _upload(comfy, "broken.png", b"\x89PNG\r\n\x1a\n cut short")
    answer = requests.post(f"{comfy.url}/prompt", json={"prompt": _img2img("broken.png")}, timeout=30)
    assert answer.status_code == 200  # ComfyUI checks only that the file exists before it runs
    prompt_id = answer.json()["prompt_id"]
    deadline = time.monotonic() + 30
    while not (entry := requests.get(f"{comfy.url}/history/{prompt_id}", timeout=30).json().get(prompt_id)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert entry["status"]["status_str"] == "error"
    failed = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
    assert failed["node_id"] == "10" and failed["node_type"] == "LoadImage"
    assert failed["exception_type"] == "PIL.UnidentifiedImageError", json.dumps(failed)[:300]


def test_an_image_keeps_its_size_unless_a_latent_crops_it_to_a_multiple_of_8(comfy: ComfyUIEmulator) -> None:
    _upload(comfy, "odd.png", _png(100, 60, (5, 6, 7)))
    # VAEEncode crops to whole latent pixels (ComfyUI's VAE: 8x8 image pixels each)
    assert Image.open(io.BytesIO(_render(comfy, _img2img("odd.png")))).size == (96, 56)
    straight = {"10": {"class_type": "LoadImage", "inputs": {"image": "odd.png"}},
                "9": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": "same"}}}
    assert Image.open(io.BytesIO(_render(comfy, straight))).size == (100, 60)
