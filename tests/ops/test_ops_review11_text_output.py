"""What `goldgate checklist` and `goldgate dr-drill` print reads as words: a stack with no pinned image is said to
have none, not to run "None"; a drill that took no backup does not list a backup of 0 bytes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from goldgate.cli import main

IMG = "local/worker@sha256:" + "c" * 64


def test_a_golden_report_beside_an_unpinned_staging_says_staging_has_no_image(capsys, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "latest.json").write_text(json.dumps({
        "schema": "goldgate.golden-report.v1", "suite": "full", "stack": "staging", "image": IMG, "passed": True,
        "finished_at": datetime.now(UTC).isoformat(), "failures": [], "latency_s": {"mean": 3.0}, "cases": []}))
    code = main(["checklist", "staging", "--offline", "--json", "--home", str(tmp_path / "home"),
                 "--reports-dir", str(reports)])
    checks = {c["id"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert code == 1
    assert checks["golden_against_staging"]["evidence"] == (
        f"the report is for stack 'staging' image {IMG}, STAGING has no pinned image (`goldgate deploy staging`)")


def test_a_drill_that_took_no_backup_says_none_was_taken(capsys, tmp_path: Path) -> None:
    assert main(["dr-drill", "staging", "--home", str(tmp_path / "home")]) == 1  # no database: nothing to back up
    out = capsys.readouterr().out
    assert ["backup", "-", "(none", "taken)"] in [line.split() for line in out.splitlines()]
    assert "bytes" not in out
