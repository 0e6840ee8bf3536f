"""A team's workflow with a node type the local ComfyUI emulator did not know, once that node type is added to
NODE_TYPES with its inputs as ComfyUI's /object_info lists them ("Add a workflow", images/worker/README.md, step 5),
renders on the local target. Most image nodes name their image input `image` (WAS's `Image Blur`: {"image": IMAGE,
"blur_radius": INT}); the emulator followed only inputs named images/samples/latent_image to the latent that sizes
its render, so the job failed `node 9 (SaveImage): ... no latent image upstream` however the node was declared."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from goldgate.local.comfyui import ComfyUIEmulator
from goldgate.local.comfyui.backend import NODE_TYPES, NodeType
from images.worker.comfy_client import ComfyClient, ComfyExecutionError
from images.worker.workflows import build_graph, load_workflow, resolve_inputs

CHECKPOINT = "sd_xl_base_1.0.safetensors"
# WAS Node Suite's `Image Blur` as its /object_info/Image%20Blur lists it.
IMAGE_BLUR = NodeType("Image Blur", "WAS Suite/Image/Filter", {
    "image": ("IMAGE",), "blur_radius": ("INT", {"default": 7, "min": 1, "max": 1024, "step": 1})}, ("IMAGE",))


def _workflow_file(directory: Path) -> Path:
    """The file a workflow author writes: an SDXL export with the blur between the decode and SaveImage."""
    graph = {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 0, "steps": 25, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 768, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, low quality", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "goldgate", "images": ["10", 0]}},
        "10": {"class_type": "Image Blur", "inputs": {"image": ["8", 0], "blur_radius": 2},
               "_meta": {"title": "Image Blur (WAS)"}},
    }

    def param(name: str, kind: str, node: str, field: str, default: Any, low: int, high: int) -> dict[str, Any]:
        return {"name": name, "type": kind, "required": default is None, "default": default, "min": low,
                "max": high, "choices": None, "node": node, "input": field}

    path = directory / "sdxl-blur.json"
    path.write_text(json.dumps({
        "id": "sdxl-blur", "version": "sdxl-blur@1.0.0", "description": "SDXL, then WAS's Image Blur",
        "parameters": [param("prompt", "string", "6", "text", None, 1, 2000),
                       param("blur_radius", "integer", "10", "blur_radius", 2, 1, 16)],
        "graph": graph}), encoding="utf-8")
    return path


@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[ComfyClient]:
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / CHECKPOINT).write_bytes(b"x")
    emulator = ComfyUIEmulator(models, tmp_path / "out", log_stream=io.StringIO()).start()
    assert emulator.wait_listening(10)
    yield ComfyClient(emulator.url, 0.02)
    emulator.stop()


def _render(client: ComfyClient, path: Path, inputs: dict[str, Any]) -> list[bytes]:
    """As the worker runs a job: the workflow file, the job's inputs resolved and set in the graph, ComfyUI's
    /prompt, its history, then /view for each saved image."""
    workflow = load_workflow(path)
    graph = build_graph(workflow, resolve_inputs(workflow, inputs))
    return [client.fetch_image(image) for image in client.wait_for_outputs(client.queue_prompt(graph, "t"), 10)]


def test_a_workflow_with_an_added_image_node_named_image_renders_end_to_end(comfy: ComfyClient, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(NODE_TYPES, IMAGE_BLUR.name, IMAGE_BLUR)
    path = _workflow_file(tmp_path)
    [image] = _render(comfy, path, {"prompt": "a lighthouse at dusk"})
    # Sized by the EmptyLatentImage two links up the blur's `image` (before: "no latent image upstream").
    assert Image.open(io.BytesIO(image)).size == (768, 512)
    # The added node's own value is upstream of the save: a parameter wired to it changes the render, as every
    # upstream value does, so a mis-wired parameter shows on the local target too.
    [blurred_more] = _render(comfy, path, {"prompt": "a lighthouse at dusk", "blur_radius": 9})
    assert blurred_more != image
    [again] = _render(comfy, path, {"prompt": "a lighthouse at dusk"})
    assert again == image


def test_a_node_type_with_no_image_or_latent_input_says_what_the_emulator_needs(
        comfy: ComfyClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An added node type that makes an image from no IMAGE or LATENT input (here one declared with only its
    radius) gives the emulator nothing to size the render by: the job's error names that node and what to
    declare, not the SaveImage node alone."""
    monkeypatch.setitem(NODE_TYPES, IMAGE_BLUR.name, NodeType(
        IMAGE_BLUR.name, IMAGE_BLUR.category, {"blur_radius": IMAGE_BLUR.required["blur_radius"]}, ("IMAGE",)))
    with pytest.raises(ComfyExecutionError) as caught:
        _render(comfy, _workflow_file(tmp_path), {"prompt": "a lighthouse at dusk"})
    message = str(caught.value)
    assert "no latent image upstream" in message, message
    assert "node 10 (Image Blur)" in message and "NODE_TYPES" in message, message
