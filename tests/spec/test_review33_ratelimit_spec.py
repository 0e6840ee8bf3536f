"""api.rate_limits in a stack file: `create_per_minute` and `inputs_per_minute`, the most creates and uploads one API
token may send a minute. Left out, 600 each (a batch of hundreds at once is taken); given, taken as written; anything but a
whole number from 1 to 100,000 is refused with one line naming the field and what to give instead, as is a field
the block does not have. The limit cannot be turned off: 0 would refuse everything, and is refused saying so."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError
from service import config as service_config

DIGEST = "registry.example.com/your-org/goldgate-worker@sha256:" + "a" * 64


def _local_file(tmp_path: Path, rate_limits: Any) -> Path:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["staging"]["api"]["rate_limits"] = rate_limits
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _cloud(rate_limits: Any) -> specs.StackSpec:
    doc = copy.deepcopy(yaml.safe_load((specs.STACKS_DIR / "Pulumi.staging.yaml").read_text())["config"]
                        ["goldgate:spec"])
    doc["image"] = DIGEST
    doc["api"]["rate_limits"] = rate_limits
    return specs.from_pulumi_config("staging", doc)


def _both(tmp_path: Path, rate_limits: Any) -> list[specs.StackSpec]:
    return [specs.load_local("staging", _local_file(tmp_path, rate_limits)), _cloud(rate_limits)]


def test_the_shipped_stack_files_get_the_default_limits() -> None:
    loaded = [specs.load_local(stack).api for stack in ("staging", "prod")]
    loaded += [specs.load_pulumi(stack).api for stack in ("staging", "prod")]  # as shipped: the line commented out
    for api in loaded:
        assert (api.rate_limits.create_per_minute, api.rate_limits.inputs_per_minute) == (600, 600)


def test_the_spec_and_the_service_agree_on_the_highest_limit() -> None:
    assert specs.MAX_RATE_LIMIT_PER_MINUTE == service_config.MAX_RATE_LIMIT_PER_MINUTE


@pytest.mark.parametrize(("create", "inputs"), [(1, 1), (600, 120), (100_000, 100_000)])
def test_limits_in_range_are_taken_as_written(tmp_path: Path, create: int, inputs: int) -> None:
    for spec in _both(tmp_path, {"create_per_minute": create, "inputs_per_minute": inputs}):
        assert (spec.api.rate_limits.create_per_minute, spec.api.rate_limits.inputs_per_minute) == (create, inputs)


def test_one_limit_given_leaves_the_other_at_its_default(tmp_path: Path) -> None:
    for spec in _both(tmp_path, {"inputs_per_minute": 10}):
        assert (spec.api.rate_limits.create_per_minute, spec.api.rate_limits.inputs_per_minute) == (600, 10)


@pytest.mark.parametrize(("value", "words"), [
    (0, "below the minimum 1: it would refuse every"),
    (-5, "below the minimum 1"),
    (100_001, "above the maximum 100000"),
    (10**40, "above the maximum 100000"),
    (1.5, "expected an integer"),
    ("600", "expected an integer"),
    (True, "expected an integer"),
    ([600], "expected an integer"),
])
@pytest.mark.parametrize("field", ["create_per_minute", "inputs_per_minute"])
def test_a_limit_that_is_no_whole_number_in_range_is_refused_naming_the_field(tmp_path: Path, field: str,
                                                                              value: Any, words: str) -> None:
    for load in (lambda: specs.load_local("staging", _local_file(tmp_path, {field: value})),
                 lambda: _cloud({field: value})):
        with pytest.raises(SpecError) as refused:
            load()
        message = str(refused.value)
        assert f"api.rate_limits.{field}" in message and words in message, message
        assert "\n" not in message and len(message) < 500, message


def test_zero_is_refused_saying_the_limit_cannot_be_turned_off_and_how_to_lift_it(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as refused:
        _cloud({"create_per_minute": 0})
    assert "cannot be turned off" in str(refused.value) and "set it higher" in str(refused.value)


@pytest.mark.parametrize(("block", "words"), [
    ({"creates_per_minute": 60}, "unknown field(s) creates_per_minute"),
    ({"create_per_minute": 60, "period": 10}, "unknown field(s) period"),
    (600, "api.rate_limits: expected a mapping, got int"),
])
def test_a_block_with_an_unknown_field_or_no_mapping_is_refused(tmp_path: Path, block: Any, words: str) -> None:
    for load in (lambda: specs.load_local("staging", _local_file(tmp_path, block)), lambda: _cloud(block)):
        with pytest.raises(SpecError) as refused:
            load()
        assert words in str(refused.value) and "\n" not in str(refused.value), str(refused.value)
