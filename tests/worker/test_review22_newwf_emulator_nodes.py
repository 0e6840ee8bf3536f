"""The local target's ComfyUI emulator and a team's own workflow: a node type it does not emulate fails with
ComfyUI's own words followed by what the local target cannot do and what to do instead (a real ComfyUI may have
that node), and two core nodes common in SD 1.5 workflows (clip skip, the advanced sampler) are emulated."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from images.worker.comfy_client import ComfyClient, PromptRejected


def _sd15(clip_skip: int | None = None, advanced: bool = False, extra: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    clip = ["4", 1]
    graph: dict[str, Any] = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"},
              "_meta": {"title": "Load Checkpoint"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "team", "images": ["8", 0]}},
    }
    if clip_skip is not None:
        graph["11"] = {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": clip_skip, "clip": clip},
                       "_meta": {"title": "CLIP Set Last Layer"}}
        clip = ["11", 0]
    graph["6"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "a glass bottle", "clip": clip}}
    graph["7"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": clip}}
    links = {"model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}
    if advanced:
        graph["3"] = {"class_type": "KSamplerAdvanced", "inputs": {
            "add_noise": "enable", "noise_seed": 7, "steps": 20, "cfg": 8, "sampler_name": "euler",
            "scheduler": "normal", "start_at_step": 0, "end_at_step": 10000, "return_with_leftover_noise": "disable",
            **links}}
    else:
        graph["3"] = {"class_type": "KSampler", "inputs": {
            "seed": 7, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal", "denoise": 1, **links}}
    graph.update(extra or {})
    return graph


def _render(url: str, graph: dict[str, Any]) -> list[bytes]:
    client = ComfyClient(url, 0.02)
    return [client.fetch_image(i) for i in client.wait_for_outputs(client.queue_prompt(graph, "t"), 10)]


def test_a_node_type_the_emulator_lacks_says_what_the_local_target_cannot_do(comfy: Any) -> None:
    graph = _sd15(extra={"10": {"class_type": "Image Save", "inputs": {"images": ["8", 0], "extension": "webp"},
                                "_meta": {"title": "Image Save (WAS)"}}})
    with pytest.raises(PromptRejected) as caught:
        ComfyClient(comfy.url, 0.02).queue_prompt(graph, "t")
    error = caught.value.error
    assert error["type"] == "missing_node_type"
    message = error["message"]
    # ComfyUI's own sentence stays first; before, it was all there was, sending the team to install a custom node
    # that the local target could never run, or to hunt for one when the node is a core node the emulator lacks.
    assert message.startswith("Node 'Image Save' not found. The custom node may not be installed.")
    assert "[local target: the ComfyUI emulator lacks 'Image Save'" in message, message
    assert "--target cloud" in message and "NODE_TYPES" in message, message
    # What to do comes before the list of emulated types, within what a one-line summary shows.
    assert message.index("--target cloud") < 300 < message.index("It emulates"), message


@pytest.mark.parametrize("advanced", [False, True])
def test_clip_skip_and_the_advanced_sampler_render_on_the_local_target(comfy: Any, advanced: bool) -> None:
    [first] = _render(comfy.url, _sd15(clip_skip=-2, advanced=advanced))
    assert Image.open(io.BytesIO(first)).size == (512, 512)
    # A parameter wired to the clip skip changes the render, as every upstream value does.
    [other] = _render(comfy.url, _sd15(clip_skip=-1, advanced=advanced))
    assert other != first


def test_clip_skip_out_of_comfyuis_range_is_refused_as_comfyui_refuses_it(comfy: Any, models_dir: Path) -> None:
    with pytest.raises(PromptRejected) as caught:
        ComfyClient(comfy.url, 0.02).queue_prompt(_sd15(clip_skip=2), "t")
    [node_error] = caught.value.node_errors["11"]["errors"]
    assert node_error["type"] == "value_bigger_than_max"


def test_the_worker_readme_lists_exactly_the_node_types_the_emulator_runs() -> None:
    from goldgate.local.comfyui.backend import NODE_TYPES

    readme = (Path(__file__).resolve().parents[2] / "images" / "worker" / "README.md").read_text()
    listed = readme.split("runs only the node types it emulates (", 1)[1].split("; `NODE_TYPES`", 1)[0]
    assert sorted(name.strip(" `\n") for name in listed.split(",")) == sorted(NODE_TYPES)
