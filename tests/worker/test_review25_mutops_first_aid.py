"""first_aid's line for ComfyUI's missing_node_type when the answer carries no extra_info (a ComfyUI whose
answer names the type in its message only), and a type name that is no name is cut."""

from __future__ import annotations

from images.worker.comfy_client import PromptRejected
from images.worker.first_aid import explain_rejection


def _missing(class_type: str, extra_info: object) -> PromptRejected:
    return PromptRejected({"type": "missing_node_type",
                           "message": f"Node '{class_type}' not found. The custom node may not be installed.",
                           "details": "Node ID '#10'", "extra_info": extra_info}, {})


def test_the_type_is_read_from_the_message_when_the_answer_has_no_extra_info():
    line = explain_rejection(_missing("Image Save", None), {"10": {"class_type": "Image Save", "inputs": {}}}, ())
    assert "this image's ComfyUI has no node type 'Image Save': if it comes from a custom node" in line, line


def test_a_huge_type_name_is_cut_in_the_advice():
    name = "N" * 5_000
    line = explain_rejection(_missing(name, {"class_type": name}), {"10": {"class_type": name, "inputs": {}}}, ())
    assert f"has no node type '{'N' * 100}': if it comes" in line
