"""api.max_input_bytes and api.max_input_pixels: a stack file bounds the input images POST /api/inputs takes. Left
out, each is the service's default; given, it is taken as written; a value that is no count, or out of range, is
refused naming the field, and one above 20 MiB names the GPU worker's limit as the reason."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError
from service import config as service_config
from service.config import ServiceConfig

DIGEST = "registry.example.com/your-org/goldgate-worker@sha256:" + "a" * 64
MIB = 1024 * 1024


def _local_file(tmp_path: Path, **api: Any) -> Path:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["staging"]["api"].update(api)
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _cloud(**api: Any) -> specs.StackSpec:
    doc = copy.deepcopy(yaml.safe_load((specs.STACKS_DIR / "Pulumi.staging.yaml").read_text())["config"]
                        ["goldgate:spec"])
    doc["image"] = DIGEST
    doc["api"].update(api)
    return specs.from_pulumi_config("staging", doc)


def test_a_stack_file_without_the_limits_gets_the_services_defaults() -> None:
    loaded = [specs.load_local(stack).api for stack in ("staging", "prod")]
    loaded += [specs.load_pulumi(stack).api for stack in ("staging", "prod")]  # as shipped: the lines commented out
    for api in loaded:
        assert (api.max_input_bytes, api.max_input_pixels) == (20 * MIB, 4096 * 4096)
    assert ServiceConfig.max_input_bytes == specs.ApiSpec.max_input_bytes  # one default on both sides
    assert ServiceConfig.max_input_pixels == specs.ApiSpec.max_input_pixels


def test_the_spec_and_the_service_agree_on_the_largest_input_image() -> None:
    assert specs.MAX_INPUT_BYTES == service_config.MAX_INPUT_BYTES == 20 * MIB


@pytest.mark.parametrize(("max_bytes", "max_pixels"), [(65_536, 1), (20 * MIB, 4096 * 4096), (MIB, 10**12)])
def test_limits_in_range_are_taken_as_written(tmp_path: Path, max_bytes: int, max_pixels: int) -> None:
    local = specs.load_local("staging", _local_file(tmp_path, max_input_bytes=max_bytes, max_input_pixels=max_pixels))
    cloud = _cloud(max_input_bytes=max_bytes, max_input_pixels=max_pixels)
    for api in (local.api, cloud.api):
        assert (api.max_input_bytes, api.max_input_pixels) == (max_bytes, max_pixels)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("max_input_bytes", "20MiB", "expected an integer, got '20MiB'"),
    ("max_input_bytes", "1048576", "expected an integer, got '1048576'"),
    ("max_input_bytes", 1048576.0, "expected an integer, got 1048576.0"),
    ("max_input_bytes", True, "expected an integer, got True"),
    ("max_input_bytes", [1048576], "expected an integer"),
    ("max_input_pixels", "4096x4096", "expected an integer, got '4096x4096'"),
    ("max_input_pixels", 1.5, "expected an integer, got 1.5"),
    ("max_input_pixels", False, "expected an integer, got False"),
])
def test_a_limit_that_is_no_integer_is_refused_by_name(tmp_path: Path, field: str, value: object,
                                                        message: str) -> None:
    with pytest.raises(SpecError, match=rf"stacks\.staging\.api\.{field}: " + re.escape(message)):
        specs.load_local("staging", _local_file(tmp_path, **{field: value}))
    with pytest.raises(SpecError, match=rf"goldgate:spec\.api\.{field}: " + re.escape(message)):
        _cloud(**{field: value})


@pytest.mark.parametrize(("field", "value", "message"), [
    ("max_input_bytes", 20 * MIB + 1, ("20971521 is above the maximum 20971520 (20 MiB): the GPU worker reads no "
                                       "larger input image")),
    ("max_input_bytes", 10**30, f"{10**30} is above the maximum 20971520 (20 MiB): the GPU worker reads no larger"),
    ("max_input_bytes", 65_535, "65535 is below the minimum 65536 (64 KiB)"),
    ("max_input_bytes", 20, ("20 is below the minimum 65536 (64 KiB): a smaller limit refuses most images a "
                             "workflow takes; give the limit in bytes")),
    ("max_input_bytes", 0, "0 is below the minimum 65536"),
    ("max_input_bytes", -1, "-1 is below the minimum 65536"),
    ("max_input_pixels", 0, "0 is below the minimum 1"),
    ("max_input_pixels", -4096, "-4096 is below the minimum 1"),
])
def test_a_limit_out_of_range_is_refused_by_name_with_the_reason(tmp_path: Path, field: str, value: int,
                                                                  message: str) -> None:
    with pytest.raises(SpecError, match=rf"stacks\.staging\.api\.{field}: " + re.escape(message)):
        specs.load_local("staging", _local_file(tmp_path, **{field: value}))
    with pytest.raises(SpecError, match=rf"goldgate:spec\.api\.{field}: " + re.escape(message)):
        _cloud(**{field: value})


def test_the_refusal_is_one_line_a_user_can_act_on(tmp_path: Path) -> None:
    path = _local_file(tmp_path, max_input_bytes=25 * MIB)
    with pytest.raises(SpecError) as refused:
        specs.load_local("staging", path)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{path}: stacks.staging.api.max_input_bytes: 26214400 is ")
    assert message.endswith("use 20971520 or less")
