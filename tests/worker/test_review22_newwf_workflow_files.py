"""A team's first own workflow: the mistakes a newcomer makes turning a ComfyUI export into a goldgate workflow
file are refused with a message that says what the file is and what to write instead (images/worker/README.md,
"Add a workflow"), not with a bare "missing field" or a wrong "is not a node"."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from images.worker.workflows import WorkflowError, load_workflow, parse_workflow

# What ComfyUI's File > Export Workflow (API) writes for its default SD 1.5 graph: string node ids, _meta titles.
EXPORT: dict[str, Any] = {
    "3": {"inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
                     "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                     "latent_image": ["5", 0]}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
    "4": {"inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}, "class_type": "CheckpointLoaderSimple",
          "_meta": {"title": "Load Checkpoint"}},
    "5": {"inputs": {"width": 512, "height": 512, "batch_size": 1}, "class_type": "EmptyLatentImage",
          "_meta": {"title": "Empty Latent Image"}},
    "6": {"inputs": {"text": "beautiful scenery", "clip": ["4", 1]}, "class_type": "CLIPTextEncode",
          "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "7": {"inputs": {"text": "text, watermark", "clip": ["4", 1]}, "class_type": "CLIPTextEncode",
          "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode", "_meta": {"title": "VAE Decode"}},
    "9": {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage",
          "_meta": {"title": "Save Image"}},
}
# What File > Save writes (the editor's format), abridged.
UI_SAVE: dict[str, Any] = {
    "last_node_id": 9, "last_link_id": 9,
    "nodes": [{"id": 3, "type": "KSampler", "pos": [863, 186], "widgets_values": [1, "randomize", 20, 8, "euler"]}],
    "links": [[1, 4, 0, 3, 0, "MODEL"]], "groups": [], "config": {}, "extra": {}, "version": 0.4}


def _wrapped(graph: Any, node: Any = "6") -> dict[str, Any]:
    return {"id": "sd15-txt2img", "version": "sd15-txt2img@1.0.0", "description": "SD 1.5",
            "parameters": [{"name": "prompt", "type": "string", "required": True, "default": None, "min": 1,
                            "max": 2000, "choices": None, "node": node, "input": "text"}],
            "graph": copy.deepcopy(graph)}


def _refusal(raw: Any, tmp_path: Path) -> str:
    path = tmp_path / "sd15-txt2img.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    return str(caught.value)


def test_a_bare_api_export_dropped_into_workflows_is_told_how_to_wrap_it(tmp_path: Path) -> None:
    message = _refusal(EXPORT, tmp_path)
    # Before: "missing field 'id'", which reads as a typo in a file the team did not know had to be wrapped.
    assert "bare ComfyUI API export" in message, message
    assert '"graph": <the export>' in message and "Add a workflow" in message, message


@pytest.mark.parametrize("where", ["the file", "the graph"])
def test_the_editors_save_format_is_named_with_the_export_to_use_instead(tmp_path: Path, where: str) -> None:
    message = _refusal(UI_SAVE if where == "the file" else _wrapped(UI_SAVE), tmp_path)
    # Before: "missing field 'id'" for the file, "graph node 'last_node_id' needs a class_type" for the graph.
    assert "UI format" in message and "Export Workflow (API)" in message, message


def test_a_node_id_written_as_a_number_is_told_to_be_a_string() -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(_wrapped(EXPORT, node=6), "sd15-txt2img.json")
    # Before: "node 6 is not a node of the graph", though the graph plainly has node "6".
    assert 'node ids are strings' in str(caught.value) and 'write "6"' in str(caught.value), caught.value


def test_a_parameter_naming_a_node_the_graph_lacks_lists_the_nodes_there_are() -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(_wrapped(EXPORT, node="60"), "sd15-txt2img.json")
    message = str(caught.value)
    assert "'60' is not a node of the graph" in message
    assert "6 (CLIPTextEncode)" in message and "3 (KSampler)" in message, message

