"""A job refused because the image's ComfyUI lacks a node type says what to do: the custom node the workflow
was made with is not installed in the image (the Dockerfile), or the export is from a newer ComfyUI. ComfyUI's
own answer names only the type and the node id."""

from __future__ import annotations

from images.worker.comfy_client import PromptRejected
from images.worker.first_aid import explain_rejection

GRAPH = {"10": {"class_type": "Image Save", "inputs": {}}}


def _missing(message_tail: str = "") -> PromptRejected:
    # ComfyUI's answer (execution.py validate_prompt): no node_errors, the top error names the type
    return PromptRejected({"type": "missing_node_type",
                           "message": "Node 'Image Save' not found. The custom node may not be installed." + message_tail,
                           "details": "Node ID '#10'", "extra_info": {"node_id": "10", "class_type": "Image Save"}}, {})


def test_a_missing_node_type_names_the_type_and_the_custom_nodes_yaml_fix():
    line = explain_rejection(_missing(), GRAPH, ("/comfyui/models",))
    assert line.startswith("ComfyUI rejected the prompt: Node 'Image Save' not found.")
    assert "Node ID '#10'" in line
    assert "no node type 'Image Save'" in line and "images/worker/custom_nodes.yaml" in line and "commit" in line


def test_on_the_local_target_the_emulator_says_it_and_nothing_is_added():
    line = explain_rejection(_missing(" [local target: the ComfyUI emulator lacks 'Image Save' ...]"), GRAPH, ())
    assert "[local target:" in line and "custom_nodes.yaml" not in line


def test_other_refusals_are_left_as_they_were():
    rejected = PromptRejected({"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "",
                               "extra_info": {}}, {})
    assert explain_rejection(rejected, GRAPH, ()) == "ComfyUI rejected the prompt: Prompt has no outputs"
