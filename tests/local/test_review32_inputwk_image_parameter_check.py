"""goldgate build's parameter check (goldgate/local/comfyui/params.py) knows LoadImage's `image`: an image
parameter there is what the input takes, and an image parameter anywhere else (or a number on LoadImage) is named."""

from __future__ import annotations

import copy
from typing import Any

from goldgate.local.comfyui.params import parameter_problems
from images.worker.workflows import parse_workflow

WORKFLOW: dict[str, Any] = {
    "id": "img2img", "version": "img2img@1.0.0", "description": "",
    "parameters": [{"name": "image", "type": "image", "required": True, "default": None, "min": None, "max": None,
                    "choices": None, "node": "10", "input": "image"}],
    "graph": {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "base.safetensors"}},
        "10": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "11": {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "model": ["4", 0], "seed": 1, "steps": 1, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["11", 0], "denoise": 0.5}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "t"}},
    },
}


def _problems(**changes: Any) -> list[str]:
    raw = copy.deepcopy(WORKFLOW)
    raw["parameters"][0].update(changes)
    return parameter_problems(parse_workflow(raw, "test"))


def test_an_image_parameter_on_load_images_image_is_no_contradiction() -> None:
    assert _problems() == []
    # a string naming a file the image ships in ComfyUI's input folder is one too
    assert _problems(type="string") == []


def test_an_image_parameter_on_another_input_or_a_number_on_load_image_is_named() -> None:
    where = "workflow img2img parameter image"
    assert _problems(node="6", input="text") == [
        (f"{where} (node 6 CLIPTextEncode, input text): type image, but the input is STRING: an image parameter "
         "sets the image input of a LoadImage node")]
    assert _problems(type="integer") == [
        (f"{where} (node 10 LoadImage, input image): type integer, but the input is an image file LoadImage loads "
         "from ComfyUI's input folder: declare it image")]
