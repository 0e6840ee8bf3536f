"""`local.result_retention_s`: how long a local stack's RunPod keeps a finished job's result (RunPod: 30 minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError


def _staging_with(tmp_path: Path, **local: object) -> Path:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["staging"]["local"].update(local)
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_stack_that_does_not_say_keeps_results_as_long_as_runpod(tmp_path: Path) -> None:
    assert specs.load_local("staging", _staging_with(tmp_path)).local.result_retention_s == 1800


@pytest.mark.parametrize("seconds", [1, 2.5, 1800])
def test_a_shorter_retention_is_taken_to_rehearse_a_recover_after_runpod_forgot(tmp_path: Path,
                                                                                  seconds: float) -> None:
    local = specs.load_local("staging", _staging_with(tmp_path, result_retention_s=seconds)).local
    assert local.result_retention_s == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "stacks.staging.local.result_retention_s: 0 is below the minimum 1"),
        (0.5, "stacks.staging.local.result_retention_s: 0.5 is below the minimum 1"),
        (-30, "stacks.staging.local.result_retention_s: -30 is below the minimum 1"),
        # RunPod itself forgets a result after 30 minutes: a longer local one would hide the recover path.
        (3600, "stacks.staging.local.result_retention_s: 3600 is above the maximum 1800"),
        (float("inf"), "stacks.staging.local.result_retention_s: inf is above the maximum 1800"),
        ("30m", "stacks.staging.local.result_retention_s: expected a number, got '30m'"),
        (True, "stacks.staging.local.result_retention_s: expected a number, got True"),
        ([60], r"stacks.staging.local.result_retention_s: expected a number, got \[60\]"),
        (float("nan"), "stacks.staging.local.result_retention_s: expected a number, got nan"),
    ],
)
def test_a_bad_retention_is_refused_naming_the_field_and_value(tmp_path: Path, value: object, message: str) -> None:
    with pytest.raises(SpecError, match=message) as refused:
        specs.load_local("staging", _staging_with(tmp_path, result_retention_s=value))
    assert "\n" not in str(refused.value)


def test_a_misspelt_retention_key_is_refused_not_ignored(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="stacks.staging.local: unknown field\\(s\\) result_retention$"):
        specs.load_local("staging", _staging_with(tmp_path, result_retention=5))
