"""Edges of a workflow file's checks the earlier tests left open: the nesting bound exactly, an output index of
`true`, and the list of nodes a mistyped parameter node is told, cut at 40."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from test_review22_newwf_workflow_files import EXPORT, _wrapped

from images.worker.workflows import MAX_DEPTH, WorkflowError, parse_workflow


def _nested_to(depth: int) -> dict[str, Any]:
    """The SD 1.5 workflow with a value `depth` levels deep (as graph.5.inputs.extra.a.a...), a literal input."""
    raw = _wrapped(EXPORT)
    value: Any = "leaf"
    for _ in range(depth - 4):  # graph, 5, inputs, extra: four levels already
        value = {"a": value}
    raw["graph"]["5"]["inputs"]["extra"] = value
    return raw


def test_a_value_exactly_max_depth_deep_loads_and_one_deeper_is_refused() -> None:
    assert parse_workflow(_nested_to(MAX_DEPTH), "sd15-txt2img.json").id == "sd15-txt2img"
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(_nested_to(MAX_DEPTH + 1), "sd15-txt2img.json")
    assert f"graph.5.inputs.extra.a.a... is nested more than {MAX_DEPTH} levels deep" in str(caught.value)


def test_a_link_whose_output_index_is_true_is_refused_as_no_link() -> None:
    graph = copy.deepcopy(EXPORT)
    graph["8"]["inputs"]["samples"] = ["3", True]  # JSON's true, which Python counts as the int 1
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(_wrapped(graph), "sd15-txt2img.json")
    assert "input 'samples' links to ['3', True], which is not [existing node id, output index]" \
        in str(caught.value), caught.value


def test_the_nodes_a_mistyped_node_is_told_are_cut_at_40_and_say_so() -> None:
    graph = copy.deepcopy(EXPORT)
    for n in range(100, 140):  # 47 nodes in all
        graph[str(n)] = {"inputs": {"text": "x", "clip": ["4", 1]}, "class_type": "CLIPTextEncode"}
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(_wrapped(graph, node="60"), "sd15-txt2img.json")
    message = str(caught.value)
    assert "132 (CLIPTextEncode), ...)" in message, message  # 7 one- and 33 three-digit ids, then the cut
    assert "133 (CLIPTextEncode)" not in message


def test_a_graph_with_a_node_whose_id_is_nodes_is_no_ui_save() -> None:
    # Node ids are any strings in the API format; the editor's save has "nodes" *and* "links" lists.
    graph = copy.deepcopy(EXPORT)
    graph["nodes"] = {"inputs": {"text": "a prompt", "clip": ["4", 1]}, "class_type": "CLIPTextEncode"}
    assert parse_workflow(_wrapped(graph, node="nodes"), "sd15-txt2img.json").parameters[0].node == "nodes"


def test_a_file_of_objects_without_class_types_is_no_api_export_but_a_workflow_missing_its_fields() -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow({"meta": {"author": "me"}, "graph": {"3": {"inputs": {}}}}, "sd15-txt2img.json")
    assert str(caught.value) == "sd15-txt2img.json: missing field 'id'"
