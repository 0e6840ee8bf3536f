"""A golden report that cannot be read names the golden run that writes one on the promotion's own target: a cloud
promotion's advice `goldgate golden staging` (no --target) ran the local target's suite instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.release.report import ReportError, read_report


def test_a_missing_report_in_a_given_reports_dir_names_the_cloud_golden_run(tmp_path: Path) -> None:
    with pytest.raises(ReportError) as err:
        read_report(tmp_path / "latest.json", " --target cloud")
    assert f"`goldgate golden staging --target cloud --reports-dir {tmp_path}` writes one there" in str(err.value)


def test_an_unreadable_report_names_the_cloud_golden_run_and_the_local_words_stay(tmp_path: Path) -> None:
    report = tmp_path / "latest.json"
    report.write_bytes(b"\xff not json")
    with pytest.raises(ReportError, match=r"run `goldgate golden staging --target cloud` again"):
        read_report(report, " --target cloud")
    with pytest.raises(ReportError, match=r"run `goldgate golden staging` again"):
        read_report(report)
