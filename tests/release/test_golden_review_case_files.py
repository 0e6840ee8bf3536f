"""Golden case files an operator gets slightly wrong: a case saved under another extension is named instead of
silently never running, and a file full of unknown fields is refused on one short line."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import write_case

from goldgate.release.cases import CaseError, load_cases

GOOD = "workflow: wf-a\ninputs: {prompt: p1, seed: 1}\n"


@pytest.mark.parametrize(("name", "text"), [("new-case.yml", GOOD), ("new-case.json", '{"workflow": "wf-a"}'),
                                            ("new-case.YAML", GOOD), ("new-case.Yml", GOOD)])
def test_a_case_under_another_extension_is_named_not_left_out_of_the_suite(tmp_path: Path, name: str,
                                                                          text: str) -> None:
    cases = tmp_path / "cases"
    write_case(cases, "square", GOOD)
    (cases / name).write_text(text)
    with pytest.raises(CaseError) as err:
        load_cases(cases)
    message = str(err.value)
    assert message.startswith(f"{cases / name}: ") and "rename it to new-case.yaml" in message, message


def test_every_stray_case_file_is_counted(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    write_case(cases, "square", GOOD)
    for name in ("a.yml", "b.yml", "c.json"):
        (cases / name).write_text(GOOD)
    with pytest.raises(CaseError, match=r"a\.yml: .* \(and 2 more: b\.yml, c\.json\)"):
        load_cases(cases)


def test_other_files_beside_the_cases_are_left_alone(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    write_case(cases, "square", GOOD)
    (cases / "README.md").write_text("how to write a case\n")
    (cases / "notes.txt").write_text("x\n")
    assert [c.id for c in load_cases(cases)] == ["square"]


@pytest.mark.parametrize("where", ["", "expect:\n"])
def test_thousands_of_unknown_fields_are_refused_on_one_short_line(tmp_path: Path, where: str) -> None:
    indent = "  " if where else ""
    body = "".join(f"{indent}field{i}: 1\n" for i in range(3000))
    write_case(tmp_path / "cases", "square", GOOD + where + body)
    with pytest.raises(CaseError) as err:
        load_cases(tmp_path / "cases")
    message = str(err.value)
    assert "unknown field(s) field0, field1, field10" in message and "and 2990 more" in message, message
    assert len(message) < 400 and "\n" not in message


def test_an_unknown_field_with_a_control_character_is_quoted(tmp_path: Path) -> None:
    write_case(tmp_path / "cases", "square", GOOD + '"smoke\\u202e": true\n')
    with pytest.raises(CaseError) as err:
        load_cases(tmp_path / "cases")
    assert "unknown field(s) 'smoke\\u202e'" in str(err.value)
