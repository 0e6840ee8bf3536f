"""Numbers in YAML 1.2's exponent forms (`5e-2`, `1e-4`, `2E+1`), as Pulumi reads stacks/Pulumi.<stack>.yaml: PyYAML
takes them for text unless they have a dot and a signed exponent, so a threshold or price Pulumi reads as a number
was refused with "expected a number, got '5e-2'"."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate import spec as specs
from goldgate.errors import SpecError


def local_stack(tmp_path: Path, replace: str, by: str) -> specs.StackSpec:
    text = specs.LOCAL_STACKS_FILE.read_text()
    assert replace in text
    path = tmp_path / "local.yaml"
    path.write_text(text.replace(replace, by, 1))
    return specs.load_local("staging", path)


@pytest.mark.parametrize(("written", "value"), [("5e-2", 0.05), ("5E-2", 0.05), (".05", 0.05), ("0.5e-1", 0.05)])
def test_an_error_rate_in_exponent_form_is_the_number_it_says(tmp_path: Path, written: str, value: float) -> None:
    spec = local_stack(tmp_path, "error_rate: 0.05", f"error_rate: {written}")
    assert spec.thresholds.error_rate == pytest.approx(value)


def test_a_price_per_gpu_second_in_exponent_form_is_used(tmp_path: Path) -> None:
    spec = local_stack(tmp_path, "    local:\n", "    prices_per_gpu_second: {NVIDIA GeForce RTX 4090: 3e-4}\n"
                                                "    local:\n")
    assert spec.price_per_gpu_second() == pytest.approx(0.0003)


def test_a_latency_threshold_with_an_unsigned_exponent_is_a_number(tmp_path: Path) -> None:
    spec = local_stack(tmp_path, "golden_mean_latency_s: 360", "golden_mean_latency_s: 3.6e2")
    assert spec.thresholds.golden_mean_latency_s == pytest.approx(360.0)


def test_an_integer_field_in_exponent_form_is_refused_as_the_number_it_is(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"stacks\.staging\.endpoint\.idle_timeout_s: expected an integer, got 30\.0"):
        local_stack(tmp_path, "idle_timeout_s: 30", "idle_timeout_s: 3e1")


@pytest.mark.parametrize("text", ["1e", "e3", "1.2.3", "2026.11.0", "1_0e"])
def test_what_is_no_number_stays_text(tmp_path: Path, text: str) -> None:
    spec = local_stack(tmp_path, "      ttl_ms: 3600000\n", f"      ttl_ms: 3600000\n      env: {{NOTE: {text}}}\n")
    assert spec.endpoint.env["NOTE"] == text
