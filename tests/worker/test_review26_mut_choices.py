"""Every choice a workflow file lists must pass its parameter's own type, min and max, whatever the type and
whether the parameter is required: a choice that cannot pass is refused in the file, by index, not offered by
/api/workflows to clients who could never send it (session 25's test holds integer and string parameters with
a default; these hold the bounds from below, the number and boolean types, a required parameter, and every
choice, not only the first)."""

from __future__ import annotations

from typing import Any

import pytest
from test_review25_choices_of_the_wrong_type import SAMPLER, STEPS, _workflow

from images.worker.workflows import WorkflowError, parse_workflow

CFG = {"name": "cfg", "type": "number", "default": 8, "node": "3", "input": "cfg"}
FLAG = {"name": "flag", "type": "boolean", "default": True, "node": "3", "input": "denoise"}
PROMPT = {"name": "prompt", "type": "string", "required": True, "default": None, "node": "6", "input": "text"}


@pytest.mark.parametrize(("param", "said"), [
    ({**STEPS, "min": 10, "choices": [20, 5]}, "choices[1] must be >= 10, got 5"),
    ({**SAMPLER, "min": 4, "choices": ["euler", "ddim", "lcm"]}, "choices[2] must be at least 4 characters long"),
    ({**CFG, "choices": [8, "7.5"]}, "choices[1] must be a number, got str"),
    ({**CFG, "choices": [8, False]}, "choices[1] must be a number, got bool"),
    ({**CFG, "min": 1, "max": 30, "choices": [8, 31.5]}, "choices[1] must be <= 30, got 31.5"),
    ({**FLAG, "choices": [True, "no"]}, "choices[1] must be true or false, got str"),
    ({**FLAG, "choices": [True, 0]}, "choices[1] must be true or false, got int"),
    ({**PROMPT, "max": 10, "choices": ["a cat", "a dog in the rain"]}, "choices[1] must be at most 10 characters"),
    ({**PROMPT, "choices": ["a cat", 7]}, "choices[1] must be a string, got int"),
])
def test_a_choice_its_parameter_refuses_is_refused_by_index_for_every_type(param: dict[str, Any], said: str) -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(_workflow(param))
    assert f"({param['name']}).{said}" in str(caught.value), str(caught.value)


def test_choices_that_fit_a_required_or_boolean_parameter_load() -> None:
    required = parse_workflow(_workflow({**PROMPT, "max": 10, "choices": ["a cat", "a dog"]}))
    assert required.parameters[0].choices == ("a cat", "a dog")
    flag = parse_workflow(_workflow({**FLAG, "choices": [True, False]}))
    assert flag.parameters[0].choices == (True, False)
