"""Hostile api.daily_spend_limit_usd values in a stack file, as an operator types them: a number too long for a float
(a few hundred digits, which YAML reads as an integer) is refused with the one line naming the field, as any value
above the maximum is, never a Python traceback (math.isfinite cannot take it)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError

DIGEST = "registry.example.com/your-org/goldgate-worker@sha256:" + "a" * 64
HUGE = "1" + "0" * 400  # fits YAML's integer and Python's, not a float


def _local_file(tmp_path: Path, value: str) -> Path:
    """stacks/local.yaml as shipped, its staging stack given the limit as written (text, not a dumped value)."""
    text = specs.LOCAL_STACKS_FILE.read_text()
    line = "      script_name: goldgate-api-staging\n"
    assert line in text
    path = tmp_path / "local.yaml"
    path.write_text(text.replace(line, f"{line}      daily_spend_limit_usd: {value}\n", 1))
    return path


@pytest.mark.parametrize("value", [HUGE, "-" + HUGE])
def test_a_limit_too_long_for_a_float_is_refused_naming_the_field(tmp_path: Path, value: str) -> None:
    with pytest.raises(SpecError) as caught:
        specs.load_local("staging", _local_file(tmp_path, value))
    message = str(caught.value)
    assert "stacks.staging.api.daily_spend_limit_usd" in message, message
    assert ("above the maximum" if value == HUGE else "not above 0") in message, message
    doc = copy.deepcopy(yaml.safe_load((specs.STACKS_DIR / "Pulumi.staging.yaml").read_text())["config"]
                        ["goldgate:spec"])
    doc["image"] = DIGEST
    doc["api"]["daily_spend_limit_usd"] = int(value)
    with pytest.raises(SpecError, match=r"api\.daily_spend_limit_usd"):
        specs.from_pulumi_config("staging", doc)


@pytest.mark.parametrize(("value", "limit"), [("1e3", 1000.0), ("0x10", 16.0), ("1_000", 1000.0), ("250.", 250.0)])
def test_numbers_as_yaml_writes_them_are_taken(tmp_path: Path, value: str, limit: float) -> None:
    assert specs.load_local("staging", _local_file(tmp_path, value)).api.daily_spend_limit_usd == limit
