"""Review 30 mutation audit (mut30): the worker's first aid on a refused prompt. An input the workflow's graph does
not give at all (ComfyUI's `required_input_missing`: an input deleted by hand, an export from an older ComfyUI) is
explained as such, naming the node, the input and the workflow file to add it in. A parameter is blamed only for
the node it sets (not another node's input of the same name), and a refusal naming no input gets no made-up one."""

from __future__ import annotations

import copy

from test_review30_wfa_first_aid_workflow_faults import _workflow

from images.worker.comfy_client import PromptRejected
from images.worker.first_aid import explain_rejection
from images.worker.workflows import parse_workflow


def test_an_input_the_graph_lacks_names_the_node_and_the_file_to_add_it_in() -> None:
    raw = _workflow()
    del raw["graph"]["3"]["inputs"]["denoise"]
    workflow = parse_workflow(copy.deepcopy(raw), "team-sdxl.json")
    rejected = PromptRejected(
        {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "",
         "extra_info": {}},
        {"3": {"class_type": "KSampler", "dependent_outputs": ["9"], "errors": [
            {"type": "required_input_missing", "message": "Required input is missing", "details": "denoise",
             "extra_info": {"input_name": "denoise"}}]}})
    message = explain_rejection(rejected, raw["graph"], ("/models",), workflow=workflow, values={})
    assert "node 3 (KSampler): Required input is missing: denoise" in message, message
    assert ("team-sdxl@1.0.0's graph gives node 3 no input denoise: add it in "
            "images/worker/workflows/team-sdxl.json") in message, message


def _rejected(node: str, class_type: str, error: dict) -> PromptRejected:
    return PromptRejected({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                           "details": "", "extra_info": {}},
                          {node: {"class_type": class_type, "dependent_outputs": ["9"], "errors": [error]}})


def test_a_parameter_of_another_node_with_the_same_input_is_not_blamed() -> None:
    # `prompt` sets node 6's text; node 7's (the negative prompt) is the graph's own literal
    raw = _workflow()
    workflow = parse_workflow(copy.deepcopy(raw), "team-sdxl.json")
    rejected = _rejected("7", "CLIPTextEncode", {"type": "value_smaller_than_min", "message": "Value too short",
                                                 "details": "text", "extra_info": {"input_name": "text"}})
    message = explain_rejection(rejected, raw["graph"], ("/models",), workflow=workflow, values={"prompt": "a cat"})
    assert "parameter 'prompt'" not in message, message
    assert "is team-sdxl@1.0.0's graph as shipped; fix node 7 in images/worker/workflows/team-sdxl.json" in message


def test_a_refusal_naming_no_input_gets_no_made_up_one() -> None:
    raw = _workflow()
    workflow = parse_workflow(copy.deepcopy(raw), "team-sdxl.json")
    rejected = _rejected("3", "KSampler", {"type": "exception_during_validation", "message": "Exception when "
                                           "validating node", "details": "boom", "extra_info": {}})
    message = explain_rejection(rejected, raw["graph"], ("/models",), workflow=workflow, values={})
    assert "node 3 (KSampler): Exception when validating node: boom" in message, message
    assert "no input None" not in message and "graph gives node" not in message, message
