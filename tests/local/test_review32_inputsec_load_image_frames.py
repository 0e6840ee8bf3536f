"""The ComfyUI emulator's LoadImage batches a file's frames as ComfyUI's does (nodes.py LoadImage.load_image: every
frame of PIL.ImageSequence of the first one's size, but the first picture alone of a multi-picture JPEG), so a file
that reaches ComfyUI without POST /api/inputs' checks (written to the bucket by hand, put into the input folder)
renders locally as it would on a GPU: one image per frame."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from comfy_support import comfyui
from PIL import Image
from test_review32_inputwk_comfyui_inputs import _img2img

from goldgate.local.comfyui import ComfyUIEmulator


@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[ComfyUIEmulator]:
    with comfyui(tmp_path) as emulator:
        yield emulator


def _frames(count: int) -> list[Image.Image]:
    return [Image.new("RGB", (48, 32), (60 * n % 256, 90, 20)) for n in range(count)]


def _saved(kind: str, frames: list[Image.Image]) -> bytes:
    out = io.BytesIO()
    frames[0].save(out, kind, save_all=True, append_images=frames[1:])
    return out.getvalue()


def _saved_images(comfy: ComfyUIEmulator, name: str, data: bytes) -> list[tuple[int, int]]:
    """The sizes of the images an img2img prompt loading `data` (uploaded as `name`) saves."""
    upload = requests.post(f"{comfy.url}/upload/image", files={"image": (name, data)},
                           data={"type": "input", "overwrite": "true"}, timeout=30)
    assert upload.status_code == 200, upload.text
    answer = requests.post(f"{comfy.url}/prompt", json={"prompt": _img2img(upload.json()["name"])}, timeout=30)
    assert answer.status_code == 200, answer.text
    prompt_id = answer.json()["prompt_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        entry = requests.get(f"{comfy.url}/history/{prompt_id}", timeout=30).json().get(prompt_id)
        if entry and entry["status"]["completed"]:
            sizes = []
            for saved in entry["outputs"]["9"]["images"]:
                content = requests.get(f"{comfy.url}/view", params=saved, timeout=30).content
                sizes.append(Image.open(io.BytesIO(content)).size)
            return sizes
        assert not entry or entry["status"]["status_str"] != "error", entry
        time.sleep(0.05)
    raise AssertionError(f"prompt {prompt_id} did not finish")


def test_an_animated_input_renders_one_image_per_frame_but_a_multi_picture_jpeg_one(comfy: ComfyUIEmulator) -> None:
    for kind, ext in [("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif")]:
        assert _saved_images(comfy, f"anim.{ext}", _saved(kind, _frames(3))) == [(48, 32)] * 3, kind
    mpo = _saved("MPO", _frames(2))
    with Image.open(io.BytesIO(mpo)) as written:
        assert written.format == "MPO" and written.n_frames == 2
    assert _saved_images(comfy, "pair.jpg", mpo) == [(48, 32)]  # ComfyUI keeps an MPO's first picture alone
