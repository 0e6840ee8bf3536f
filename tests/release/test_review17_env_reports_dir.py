"""Golden reports from a checkout goldgate cannot write to (read-only, another user's): said up front and in
words, naming the reports directory, not a temp file's name after every case has run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from goldgate.release.report import ReportError, atomic_write, check_reports_dir


def _unwritable_reports_dir(tmp_path: Path) -> Path:
    """A reports dir this process cannot write: a read-only directory for a user the permission bits bind, a
    path through a file otherwise (root writes a read-only directory all the same)."""
    if os.geteuid() != 0:
        checkout = tmp_path / "checkout"
        (checkout / "reports").mkdir(parents=True)
        (checkout / "reports").chmod(0o555)
        return checkout / "reports"
    (tmp_path / "checkout").write_text("a file where the checkout's scripts/ would be\n")
    return tmp_path / "checkout" / "reports"


def test_an_unwritable_reports_dir_is_refused_up_front_naming_the_directory(tmp_path: Path) -> None:
    reports = _unwritable_reports_dir(tmp_path)
    with pytest.raises(ReportError) as caught:
        check_reports_dir(reports)
    said = str(caught.value)
    assert said.startswith("golden reports cannot be written: ")
    assert f"each golden run writes its report into {reports}, in the checkout goldgate runs from" in said
    assert said.endswith("or run goldgate from a writable clone; no golden case was run")
    assert "write-probe" not in said


def test_a_writable_reports_dir_passes_the_check_and_is_left_as_it_was(tmp_path: Path) -> None:
    reports = tmp_path / "scripts" / "golden-tests" / "reports"
    check_reports_dir(reports)
    assert list(tmp_path.iterdir()) == []       # the directories it made to probe are gone again
    reports.mkdir(parents=True)
    check_reports_dir(reports)
    assert reports.is_dir() and list(reports.iterdir()) == []


def test_a_failed_atomic_write_names_the_file_it_was_writing_not_its_temp_name(tmp_path: Path) -> None:
    (tmp_path / "reports").write_text("in the way\n")
    with pytest.raises(OSError) as caught:
        atomic_write(tmp_path / "reports" / "latest.json", b"{}")
    assert caught.value.filename == str(tmp_path / "reports" / "latest.json")
