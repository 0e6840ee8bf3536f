"""The stack files, swept: stacks/local.yaml and stacks/Pulumi.<stack>.yaml (copies), each mutated as an operator's
slip, a hostile edit or a broken disk would (review24_fuzz). A stack either loads or is refused with one SpecError
that names the file and, for a value wrong in itself, the block the value sits in; never a Python error from deep
inside, and never a message a huge value swamps."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from review24_fuzz import Step, as_yaml, mutated, outcome

from goldgate.errors import SpecError
from goldgate.spec import STACKS_DIR, StackSpec, load_local, load_pulumi

LOCAL = yaml.safe_load((STACKS_DIR / "local.yaml").read_text(encoding="utf-8"))
PULUMI = {name: yaml.safe_load((STACKS_DIR / f"Pulumi.{name}.yaml").read_text(encoding="utf-8"))
          for name in ("staging", "prod")}
SWEEP = settings(max_examples=120, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _dotted(path: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in path)


def check_refusal(result: StackSpec | SpecError, file: Path, steps: list[Step], edit: str,
                  where: tuple[object, ...], shown_as: str) -> None:
    """A refusal names the file, is one bounded line, and (one value changed, the YAML intact) names the block the
    value sits in: `where` is the stack's path in the document, `shown_as` how the loader names that path."""
    if isinstance(result, StackSpec):
        return
    message = str(result)
    assert str(file) in message, message
    assert "\n" not in message and len(message) < 1_500, message
    if len(steps) == 1 and edit == "none" and steps[0].op != "raw" and "valid YAML" not in message:
        at = steps[0].named_at()
        if at[:len(where)] == where and len(at) > len(where):
            assert f"{shown_as}.{_dotted(at[len(where):])}" in message, (steps, message)


@SWEEP
@given(st.data())
def test_a_mutated_local_stack_file_loads_or_is_refused_by_name(data: st.DataObject) -> None:
    doc, steps = data.draw(mutated(LOCAL, ("stacks", "staging")))
    text, edit = as_yaml(data.draw, doc)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "local.yaml"
        file.write_bytes(text)
        result = outcome(lambda: load_local("staging", file), SpecError)
    check_refusal(result, file, steps, edit, ("stacks", "staging"), "stacks.staging")


@SWEEP
@given(st.data(), st.sampled_from(sorted(PULUMI)))
def test_a_mutated_pulumi_stack_file_loads_or_is_refused_by_name(data: st.DataObject, stack: str) -> None:
    doc, steps = data.draw(mutated(PULUMI[stack], ("config", "goldgate:spec")))
    text, edit = as_yaml(data.draw, doc)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / f"Pulumi.{stack}.yaml"
        file.write_bytes(text)
        result = outcome(lambda: load_pulumi(stack, Path(tmp)), SpecError)
    check_refusal(result, file, steps, edit, ("config", "goldgate:spec"), "goldgate:spec")


# What the sweep found: a number written in hex, octal or binary escapes Python's 4,300-digit limit on reading one,
# not on printing it, so the error quoting it (or any JSON it reached) failed with ValueError, and a long decimal one
# filled the message with its thousands of digits.
@pytest.mark.parametrize("number", ["0x" + "f" * 4_000, "-0b" + "1" * 16_000, "0" + "7" * 6_000])
@pytest.mark.parametrize("field", ["workers_max: 3", "workers_min: 0", "idle_timeout_s: 30"])
def test_a_huge_hex_octal_or_binary_number_is_refused_at_its_line(tmp_path: Path, number: str, field: str) -> None:
    text = (STACKS_DIR / "local.yaml").read_text(encoding="utf-8")
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s.strip() == field)
    file = tmp_path / "local.yaml"
    file.write_text(text.replace(field, f"{field.split(':')[0]}: {number}", 1), encoding="utf-8")
    with pytest.raises(SpecError, match=rf"not valid YAML at line {line}, column \d+: '.*\.\.\..*' is an integer of "
                                        r"\d+ digits; no setting takes one that large$") as err:
        load_local("staging", file)
    assert str(file) in str(err.value) and len(str(err.value)) < 400


def test_an_env_value_of_a_huge_hex_number_is_refused_not_a_traceback(tmp_path: Path) -> None:
    text = (STACKS_DIR / "Pulumi.staging.yaml").read_text(encoding="utf-8")
    file = tmp_path / "Pulumi.staging.yaml"
    file.write_text(text.replace("      ttl_ms: 3600000\n", "      ttl_ms: 3600000\n      env: {SEED: 0x"
                                 + "f" * 4_000 + "}\n", 1), encoding="utf-8")
    with pytest.raises(SpecError, match="is an integer of 4000 digits; no setting takes one that large"):
        load_pulumi("staging", tmp_path)


def test_a_number_too_large_for_its_field_is_quoted_short(tmp_path: Path) -> None:
    text = (STACKS_DIR / "local.yaml").read_text(encoding="utf-8")
    file = tmp_path / "local.yaml"
    file.write_text(text.replace("workers_max: 3", "workers_max: " + "9" * 4_000, 1), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_local("staging", file)
    assert str(err.value) == (f"{file}: stacks.staging.endpoint.workers_max: <an integer of 4000 digits> is above "
                              "the maximum 100")
