"""Review 26 (fixb): a typo in a report path the operator named was blamed on a missing golden run
(`goldgate promote --check --report /nonexistent.json`: "run `goldgate golden staging` first"). A path given is
named as it is; the default report, which no golden run has written yet, keeps its advice."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.release import report as report_module
from goldgate.release.report import ReportError, read_report

RUN_FIRST = "run `goldgate golden staging` first"


def _said(path: Path) -> str:
    with pytest.raises(ReportError) as caught:
        read_report(path)
    return str(caught.value)


def test_a_report_file_named_that_does_not_exist_is_named_not_blamed_on_golden(tmp_path: Path) -> None:
    said = _said(tmp_path / "nonexistent.json")
    assert said == f"no golden report at {tmp_path / 'nonexistent.json'}: no such file (check the path given)"


def test_a_reports_dir_named_that_does_not_exist_is_named(tmp_path: Path) -> None:
    said = _said(tmp_path / "nonexistent" / "deeper" / "latest.json")
    assert f"directory {tmp_path / 'nonexistent'} does not exist (check the path given)" in said
    assert RUN_FIRST not in said


def test_a_reports_dir_named_that_is_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a directory\n")
    said = _said(tmp_path / "notes.txt" / "latest.json")
    assert f"{tmp_path / 'notes.txt'} is not a directory (check the path given)" in said
    assert RUN_FIRST not in said


def test_a_reports_dir_named_that_exists_empty_says_which_run_writes_there(tmp_path: Path) -> None:
    said = _said(tmp_path / "latest.json")
    assert f"`goldgate golden staging --reports-dir {tmp_path}` writes one there" in said


def test_the_default_report_not_written_yet_still_says_to_run_golden(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_module, "REPORTS_DIR", tmp_path / "reports")
    assert _said(tmp_path / "reports" / "latest.json").endswith(f": {RUN_FIRST}")


def test_promote_check_names_the_report_path_given(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nonexistent.json"
    code = main(["promote", "--check", "--report", str(missing), "--home", str(tmp_path / "home")])
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("goldgate: error: ")]
    assert code == 1 and len(errors) == 1, err
    assert f"no golden report at {missing}: no such file (check the path given)" in errors[0]
    assert "goldgate golden" not in errors[0]
