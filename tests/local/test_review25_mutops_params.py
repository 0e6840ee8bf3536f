"""goldgate build's parameter check (goldgate/local/comfyui/params.py) at its edges: a bound equal to the
input's own is no contradiction, and a literal written where ComfyUI takes a link (a prompt typed into
KSampler's `positive`) is named."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from goldgate.local.comfyui.params import parameter_problems
from images.worker.workflows import parse_workflow

SDXL = Path(__file__).resolve().parents[2] / "images" / "worker" / "workflows" / "sdxl-txt2img.json"


def _problems(edit) -> list[str]:
    raw: dict[str, Any] = copy.deepcopy(json.loads(SDXL.read_text()))
    edit(raw)
    return parameter_problems(parse_workflow(raw, "test"))


def _param(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in raw["parameters"] if p["name"] == name)


def test_bounds_equal_to_the_inputs_own_are_no_contradiction():
    def edit(raw: dict[str, Any]) -> None:
        _param(raw, "steps").update(min=1, max=10000)       # KSampler steps: INT 1..10000
        _param(raw, "cfg").update(min=0.0, max=100.0)       # cfg: FLOAT 0..100

    assert _problems(edit) == []


def test_a_parameter_on_an_input_that_takes_a_link_is_named():
    def edit(raw: dict[str, Any]) -> None:
        raw["graph"]["3"]["inputs"]["positive"] = "a castle"  # ComfyUI takes a CONDITIONING link here
        raw["parameters"].append({"name": "positive", "type": "string", "required": True, "default": None,
                                  "min": None, "max": None, "choices": None, "node": "3", "input": "positive"})

    assert _problems(edit) == [("workflow sdxl-txt2img parameter positive (node 3 KSampler, input positive): the "
                               "input takes a CONDITIONING link from another node, not a value")]
