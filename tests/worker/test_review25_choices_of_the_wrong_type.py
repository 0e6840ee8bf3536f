"""A parameter's `choices` that its own type or bounds refuse: an integer parameter listing "abc", 25.5 or true,
a string one listing 3, a steps choice above its max. Loaded as they were, the workflow served, /api/workflows
offered those choices, and a client who sent one was told it "must be an integer" (or "<= 8"): a choice nobody
could ever send. Now the workflow file is refused by name, at the choice, where the team can fix it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from test_review22_newwf_workflow_files import EXPORT

from images.worker.workflows import WorkflowError, parse_workflow


def _workflow(param: dict[str, Any]) -> dict[str, Any]:
    base = {"required": False, "min": None, "max": None, "choices": None}
    return {"id": "sd15-txt2img", "version": "sd15-txt2img@1.0.0", "description": "SD 1.5",
            "parameters": [{**base, **param}], "graph": copy.deepcopy(EXPORT)}


STEPS = {"name": "steps", "type": "integer", "default": 20, "node": "3", "input": "steps"}
SAMPLER = {"name": "sampler", "type": "string", "default": "euler", "node": "3", "input": "sampler_name"}


@pytest.mark.parametrize(("param", "said"), [
    ({**STEPS, "choices": [20, "abc"]}, "choices[1] must be an integer, got str"),
    ({**STEPS, "choices": [20, 25.5]}, "choices[1] must be an integer, got float"),
    ({**STEPS, "choices": [True, 20]}, "choices[0] must be an integer, got bool"),
    ({**STEPS, "max": 30, "choices": [20, 40]}, "choices[1] must be <= 30, got 40"),
    ({**SAMPLER, "choices": ["euler", 3]}, "choices[1] must be a string, got int"),
    ({**SAMPLER, "max": 8, "choices": ["euler", "dpmpp_2m_sde_gpu"]}, "choices[1] must be at most 8 characters"),
])
def test_a_choice_the_parameters_own_type_or_bounds_refuse_is_refused_by_name(param: dict[str, Any],
                                                                               said: str) -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(_workflow(param))
    assert f"({param['name']}).{said}" in str(caught.value), str(caught.value)


def test_choices_that_fit_the_parameter_load_and_still_bind_its_input() -> None:
    workflow = parse_workflow(_workflow({**STEPS, "max": 30, "choices": [10, 20, 30]}))
    assert workflow.parameters[0].choices == (10, 20, 30)
    number = parse_workflow(_workflow({"name": "cfg", "type": "number", "default": 8, "node": "3", "input": "cfg",
                                       "choices": [7, 7.5, 8]}))
    assert number.parameters[0].choices == (7, 7.5, 8)  # an integer is a number
