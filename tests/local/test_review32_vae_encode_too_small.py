"""The emulator's VAEEncode rendered an image under 8 pixels on a side at 8 (7x64 gave 8x64), where ComfyUI's VAE
crops each side to a multiple of 8 (nodes.py vae_encode_crop_pixels), leaves nothing of it, and the node fails: a
workflow a tiny upload breaks on the GPU passed on the local target."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from comfy_support import comfyui
from test_review32_inputwk_comfyui_inputs import _img2img, _png, _render, _upload

from goldgate.local.comfyui import ComfyUIEmulator


@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[ComfyUIEmulator]:
    with comfyui(tmp_path) as emulator:
        yield emulator


def _outcome(comfy: ComfyUIEmulator, image: str) -> dict:
    answer = requests.post(f"{comfy.url}/prompt", json={"prompt": _img2img(image)}, timeout=30)
    assert answer.status_code == 200, answer.text
    prompt_id = answer.json()["prompt_id"]
    deadline = time.monotonic() + 30
    while not (entry := requests.get(f"{comfy.url}/history/{prompt_id}", timeout=30).json().get(prompt_id)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return entry


@pytest.mark.parametrize("size", [(7, 64), (64, 5), (1, 1)])
def test_an_image_under_8_pixels_on_a_side_fails_vae_encode(comfy: ComfyUIEmulator, size: tuple[int, int]) -> None:
    _upload(comfy, "tiny.png", _png(*size, (9, 9, 9)))
    entry = _outcome(comfy, "tiny.png")
    assert entry["status"]["status_str"] == "error", entry
    failed = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
    assert failed["node_id"] == "11" and failed["node_type"] == "VAEEncode", failed
    assert f"{size[0]}x{size[1]} pixels" in failed["exception_message"], failed


def test_an_image_of_8_pixels_a_side_still_encodes(comfy: ComfyUIEmulator) -> None:
    _upload(comfy, "eight.png", _png(8, 8, (9, 9, 9)))
    assert _render(comfy, _img2img("eight.png"))[:8] == b"\x89PNG\r\n\x1a\n"
