"""What the docs and help say of two outputs: `goldgate metrics --by-workflow-version` puts its versions' table in the
text and in the --html report, and docs/INTERFACES.md's description of `goldgate status --json` names every key it
prints (`unverified` too: PROD's release no promotion or rollback verified there)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from goldgate.cli import main

INTERFACES = Path(__file__).resolve().parents[2] / "docs" / "INTERFACES.md"


def test_the_by_workflow_version_help_names_the_text_and_the_html(capsys):
    with pytest.raises(SystemExit):
        main(["metrics", "--help"])
    words = " ".join(capsys.readouterr().out.split())
    help_text = words[words.index("--by-workflow-version also"):]
    assert "a second table in the text and in --html" in help_text, help_text[:300]


def test_the_metrics_paragraph_says_the_versions_table_is_in_the_html_too():
    text = " ".join(INTERFACES.read_text(encoding="utf-8").split())
    assert "a second table after the releases' has one row per version" in text
    said = text[text.index("a second table after the releases' has one row per version"):][:200]
    assert "`--html`" in said, said


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_key_of_status_json_is_described(tmp_path, capsys, stack):
    capsys.readouterr()
    assert main(["status", stack, "--home", str(tmp_path / "home"), "--json"]) == 0
    keys = set(json.loads(capsys.readouterr().out))
    text = INTERFACES.read_text(encoding="utf-8")
    start = text.index("`StackStatus` (frozen dataclass")
    end = text.find("\n\n", start)
    described = text[start:end if end > 0 else None]
    named = set(re.findall(r"[a-z_]+", " ".join(re.findall(r"`([^`]*)`", described))))
    assert "unverified" in keys and keys <= named, sorted(keys - named)
    assert "`goldgate status --json` adds `unverified`" in " ".join(described.split())


def _catalogue_row(event: str) -> str:
    """The event's row in LOG_EVENTS.md: the first, the service's (the RunPod emulator has a job.finished too)."""
    text = (INTERFACES.parent / "LOG_EVENTS.md").read_text(encoding="utf-8")
    return next(line for line in text.splitlines() if line.startswith(f"| `{event}` |"))


def test_every_reason_a_manual_rollback_records_is_in_the_catalogue():
    from goldgate.release import rollback

    row = _catalogue_row("release.rollback_started")
    assert all(f"`{reason}`" in row for reason in ("manual", rollback.UNJUDGED, rollback.NEVER_JUDGED)), row


def test_the_finished_lines_spend_fields_are_in_the_catalogue():
    for event in ("job.finished", "job.result_rejected"):
        row = _catalogue_row(event)
        assert "`data.cost_estimate_usd`" in row and "`data.gpu_type`" in row, row
