"""A workflow parameter's min and max are inclusive, for numbers and for a string's length: the bound itself is
taken, one past it refused with a 400 naming the input."""

from __future__ import annotations

import json

import pytest
from service_testkit import WORKFLOWS

from service.http import ApiError
from service.workflows import parse_workflow

SDXL = parse_workflow((WORKFLOWS / "sdxl-txt2img.json").read_text(encoding="utf-8"), "sdxl-txt2img.json")


@pytest.mark.parametrize(("name", "at_bound", "past_bound", "says"), [
    ("width", 2048, 2049, "must be at most 2048"),
    ("width", 256, 255, "must be at least 256"),
    ("cfg", 30, 30.000001, "must be at most 30"),
    ("cfg", 0, -0.5, "must be at least 0"),
    ("prompt", "p" * 2000, "p" * 2001, "must be at most 2000 characters"),
    ("prompt", "p", "", "must be at least 1 characters"),
])
def test_a_parameter_bound_is_inclusive_and_one_past_it_is_refused_naming_the_input(name, at_bound, past_bound,
                                                                                    says):
    base = {"prompt": "a lighthouse"}
    assert SDXL.validate_inputs({**base, name: at_bound})[name] == at_bound
    with pytest.raises(ApiError) as refused:
        SDXL.validate_inputs({**base, name: past_bound})
    error = json.loads(refused.value.to_response().body)["error"]
    assert (refused.value.status, error["code"], error["field"]) == (400, "invalid_input", f"inputs.{name}")
    assert says in error["message"]


@pytest.mark.parametrize("value", [512.5, 1e-3 + 512])
def test_an_integer_parameter_refuses_a_fraction_and_takes_a_whole_float(value):
    # 512.5 taken as 512 would run a job other than the one asked for; 512.0 is the number 512 in JSON
    with pytest.raises(ApiError) as refused:
        SDXL.validate_inputs({"prompt": "a lighthouse", "width": value})
    assert (refused.value.code, refused.value.extra["field"]) == ("invalid_input", "inputs.width")
    assert "must be an integer" in refused.value.message
    taken = SDXL.validate_inputs({"prompt": "a lighthouse", "width": 512.0})["width"]
    assert taken == 512 and type(taken) is int
