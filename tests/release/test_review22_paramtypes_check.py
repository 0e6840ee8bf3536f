"""A workflow parameter that contradicts the ComfyUI input it sets is named before any job runs.

A `string` parameter on KSampler's `steps` (an INT input), a `number` on `seed`, a `width` whose max passes
ComfyUI's 16384, choices ComfyUI's `sampler_name` list lacks, an input the node type does not have: each was
accepted silently and found only when ComfyUI refused a job (the golden run, or a client's value in
production). The check reads ComfyUI's own input specs as the local emulator keeps them (NODE_TYPES)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from goldgate.local.comfyui.backend import NodeType
from goldgate.local.comfyui.params import parameter_problems
from images.worker.workflows import load_workflows, parse_workflow

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "images" / "worker" / "workflows"


def with_param(raw: dict[str, Any], name: str, **fields: Any) -> dict[str, Any]:
    """A copy of `raw` with parameter `name`'s fields changed."""
    raw = copy.deepcopy(raw)
    param = next(p for p in raw["parameters"] if p["name"] == name)
    param.update(fields)
    return raw


def problems(raw: dict[str, Any]) -> list[str]:
    return parameter_problems(parse_workflow(raw, "test"))


def one(raw: dict[str, Any], *words: str) -> str:
    found = problems(raw)
    assert len(found) == 1, found
    for word in words:
        assert word in found[0], found[0]
    return found[0]


def base() -> dict[str, Any]:
    """The shipped sdxl-txt2img workflow, as its file has it."""
    return json.loads((SHIPPED / "sdxl-txt2img.json").read_text())


def test_the_shipped_workflows_give_no_warning():
    workflows = load_workflows(SHIPPED)
    assert workflows
    for workflow in workflows.values():
        assert parameter_problems(workflow) == [], workflow.id


def test_a_string_parameter_on_an_int_input_is_named():
    raw = with_param(base(), "steps", type="string", default="25", min=None, max=None)
    line = one(raw, "workflow sdxl-txt2img", "parameter steps", "node 3", "KSampler", "input steps")
    assert "type string" in line and "INT" in line and "integer" in line


def test_a_number_parameter_on_the_seed_is_named_and_an_integer_on_a_float_input_is_not():
    raw = with_param(base(), "seed", type="number")
    line = one(raw, "parameter seed", "node 3", "KSampler", "input seed")
    assert "type number" in line and "INT" in line
    assert problems(with_param(base(), "cfg", type="integer", default=7, min=1, max=20)) == []


@pytest.mark.parametrize("fields, said", [
    ({"max": 50000}, ["max 50000", "16384"]),
    ({"min": 8}, ["min 8", "16"]),
])
def test_bounds_outside_the_inputs_are_named(fields, said):
    line = one(with_param(base(), "width", **fields), "parameter width", "node 5", "EmptyLatentImage",
               "input width", *said)
    assert "type" not in line


def test_a_default_outside_the_input_is_named_apart_from_its_bounds():
    raw = base()
    raw["parameters"].append({"name": "denoise", "type": "number", "required": False, "default": 1.5,
                              "min": 0.0, "max": 2.0, "choices": None, "node": "3", "input": "denoise"})
    found = problems(raw)
    assert len(found) == 2, found
    assert any("max 2 " in line and "max 1" in line for line in found), found
    assert any("default 1.5" in line for line in found), found
    assert all("parameter denoise" in line and "input denoise" in line for line in found), found


def test_choices_and_a_default_not_in_a_combo_list_are_named():
    raw = with_param(base(), "sampler", choices=["euler", "euler_a", "dpmpp_2m"], default="euler_a")
    found = problems(raw)
    assert len(found) == 2, found
    assert all("parameter sampler" in line and "node 3" in line and "input sampler_name" in line
               for line in found), found
    assert "'euler_a'" in found[0] and "dpmpp_2m" not in found[0].split("list")[0]
    assert "default 'euler_a'" in found[1]


def test_a_combo_input_needs_a_string_parameter():
    raw = with_param(base(), "scheduler", type="integer", default=1, choices=None, min=None, max=None)
    found = problems(raw)
    assert len(found) == 2, found
    assert all("parameter scheduler" in line and "input scheduler" in line for line in found), found
    assert "type integer" in found[0] and "COMBO" in found[0] and "declare it string" in found[0], found
    assert "default 1 is not in the input's list" in found[1], found


def test_a_model_file_combo_is_left_to_the_manifest_but_its_type_is_checked():
    raw = base()
    raw["parameters"].append({"name": "checkpoint", "type": "string", "required": False,
                              "default": "sd_xl_base_1.0.safetensors", "min": None, "max": None,
                              "choices": ["sd_xl_base_1.0.safetensors", "other.safetensors"], "node": "4",
                              "input": "ckpt_name"})
    assert problems(raw) == []
    raw["parameters"][-1].update(type="integer", default=1, choices=None)
    one(raw, "parameter checkpoint", "node 4", "CheckpointLoaderSimple", "input ckpt_name", "type integer")


def test_an_input_the_node_type_does_not_have_is_named():
    raw = with_param(base(), "steps", input="step")
    raw["graph"]["3"]["inputs"]["step"] = 25     # the typo is in the graph too, so the workflow loads
    line = one(raw, "parameter steps", "node 3", "KSampler", "input step", "has no input step")
    assert "steps" in line.split("its inputs")[1]


def test_a_node_type_the_emulator_does_not_know_is_skipped():
    raw = with_param(base(), "steps", type="string", default="25", min=None, max=None)
    raw["graph"]["3"]["class_type"] = "KSamplerFromACustomNode"
    assert problems(raw) == []


def test_a_boolean_input_needs_a_boolean_parameter():
    node_types = {"KSampler": NodeType("KSampler", "sampling", {"steps": ("BOOLEAN", {"default": False})},
                                       ("LATENT",))}
    workflow = parse_workflow(base(), "test")
    found = parameter_problems(workflow, node_types)
    steps = [line for line in found if "parameter steps" in line]
    assert len(steps) == 1 and "type integer" in steps[0] and "BOOLEAN" in steps[0] and "boolean" in steps[0]
