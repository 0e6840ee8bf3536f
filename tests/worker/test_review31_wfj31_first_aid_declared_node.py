"""On the cloud, a job whose custom node type the image's ComfyUI lacks gets a first-aid line. When the entry is in
custom_nodes.yaml and the image was built with it, "build and release again" changes nothing: the usual causes are
that the node failed to import when ComfyUI started (a missing dependency; ComfyUI goes on without it and prints
`IMPORT FAILED`, which the worker logs as `comfyui.output`), or that the entry's `nodes` names a type the node does
not register. The line should name those, or the author rebuilds in a loop."""

from __future__ import annotations

from images.worker.comfy_client import PromptRejected
from images.worker.first_aid import explain_rejection

GRAPH = {"10": {"class_type": "TinyUpscale", "inputs": {}}}


def test_a_missing_custom_node_type_names_an_import_failure_at_comfyui_start_as_a_cause():
    rejected = PromptRejected({"type": "missing_node_type",
                               "message": "Node 'TinyUpscale' not found. The custom node may not be installed.",
                               "details": "Node ID '#10'",
                               "extra_info": {"node_id": "10", "class_type": "TinyUpscale"}}, {})
    line = explain_rejection(rejected, GRAPH, ("/comfyui/models",))
    assert "no node type 'TinyUpscale'" in line
    assert "import" in line.lower() and "comfyui.output" in line
