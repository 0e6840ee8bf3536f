"""An explicit YAML tag on a value it cannot take (`!!bool maybe`) is one clear error naming the file and line, in a
stack file and in a golden case file alike, never a Python exception escaping PyYAML's constructors."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate import spec as specs
from goldgate.errors import SpecError
from goldgate.release.cases import CaseError, load_case

BAD_TAGGED = [("!!bool maybe", "'maybe' is not a valid !!bool"),
              ('!!bool ""', "'' is not a valid !!bool"),
              ('!!int ""', "'' is not a valid !!int"),
              ("!!timestamp next-tuesday", "'next-tuesday' is not a valid !!timestamp")]


@pytest.mark.parametrize(("value", "words"), BAD_TAGGED)
def test_a_stack_file_with_a_badly_tagged_value_is_refused_at_its_line(tmp_path: Path, value: str,
                                                                       words: str) -> None:
    text = specs.LOCAL_STACKS_FILE.read_text().replace("idle_timeout_s: 30", f"idle_timeout_s: {value}", 1)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if value in ln)
    path = tmp_path / "local.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        specs.load_local("staging", path)
    message = str(err.value)
    assert message.startswith(f"stack file {path} is not valid YAML at line {line}, column ") and words in message


@pytest.mark.parametrize(("value", "words"), BAD_TAGGED)
def test_a_case_file_with_a_badly_tagged_value_is_refused_at_its_line(tmp_path: Path, value: str,
                                                                      words: str) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(f"workflow: wf\nexpect:\n  width: {value}\n")
    with pytest.raises(CaseError) as err:
        load_case(path)
    message = str(err.value)
    assert message.startswith(f"golden case file {path} is not valid YAML at line 3, column ") and words in message


def test_a_well_tagged_value_still_reads_as_its_type(tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    path.write_text("workflow: wf\nsmoke: !!bool true\nexpect: {width: !!int 64}\n")
    case = load_case(path)
    assert case.smoke is True and case.expect.width == 64
