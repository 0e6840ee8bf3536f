"""Stack and case files are read as YAML 1.2, as Pulumi reads stacks/Pulumi.<stack>.yaml: `12:30` is text, not the
base-60 number 750, and yes/no/on/off are not booleans. Read as YAML 1.1, a local stack's endpoint.env value
changed silently, and `flashboot: off` passed goldgate's checks only to be refused by the Pulumi program."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate import spec as specs
from goldgate.errors import SpecError
from goldgate.release.cases import CaseError, load_case


def local_stack(tmp_path: Path, replace: str, by: str) -> specs.StackSpec:
    text = specs.LOCAL_STACKS_FILE.read_text()
    assert replace in text
    path = tmp_path / "local.yaml"
    path.write_text(text.replace(replace, by, 1))
    return specs.load_local("staging", path)


@pytest.mark.parametrize("value", ["12:30", "1:05:00", "190:20:30.15"])
def test_an_env_value_that_looks_like_a_base_60_number_reaches_the_worker_as_written(tmp_path: Path,
                                                                                     value: str) -> None:
    spec = local_stack(tmp_path, "      ttl_ms: 3600000\n", f"      ttl_ms: 3600000\n      env: {{WINDOW: {value}}}\n")
    assert spec.endpoint.env["WINDOW"] == value


@pytest.mark.parametrize("value", ["off", "no", "On", "YES"])
def test_yes_no_on_off_are_not_booleans(tmp_path: Path, value: str) -> None:
    with pytest.raises(SpecError) as err:
        local_stack(tmp_path, "      idle_timeout_s: 30\n", f"      idle_timeout_s: 30\n      flashboot: {value}\n")
    assert f"stacks.staging.endpoint.flashboot: expected true or false, got '{value}'" in str(err.value)


def test_a_base_60_looking_number_is_not_read_as_seconds(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"stacks\.staging\.endpoint\.idle_timeout_s: expected an integer, got '1:30'"):
        local_stack(tmp_path, "idle_timeout_s: 30", "idle_timeout_s: 1:30")


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("False", False), ("TRUE", True)])
def test_true_and_false_are_still_booleans(tmp_path: Path, value: str, expected: bool) -> None:
    spec = local_stack(tmp_path, "      idle_timeout_s: 30\n", f"      idle_timeout_s: 30\n      flashboot: {value}\n")
    assert spec.endpoint.flashboot is expected


def test_numbers_still_read_as_numbers(tmp_path: Path) -> None:
    spec = local_stack(tmp_path, "idle_timeout_s: 30", "idle_timeout_s: 1_800")
    assert spec.endpoint.idle_timeout_s == 1800


def test_a_case_marked_smoke_yes_is_refused_not_taken_for_true(tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    path.write_text("workflow: wf\nsmoke: yes\n")
    with pytest.raises(CaseError, match="smoke must be true or false"):
        load_case(path)
