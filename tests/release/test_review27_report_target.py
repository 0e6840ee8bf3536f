"""A golden report is evidence only for the target it ran on: the local and the cloud runs write the same
latest.json, so a reader for one target refuses the other's report, naming it, and takes one that names none (a
report from before reports named their target)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goldgate.release.report import SCHEMA, ReportError, load_report_of


def _report(tmp_path: Path, **fields: object) -> Path:
    path = tmp_path / "latest.json"
    path.write_text(json.dumps({"schema": SCHEMA, "stack": "staging", "image": "local/worker@sha256:" + "a" * 64,
                                **fields}))
    return path


@pytest.mark.parametrize("ran_on, reader", [("local", "cloud"), ("cloud", "local")])
def test_another_targets_report_is_refused_with_what_to_run(tmp_path: Path, ran_on: str, reader: str) -> None:
    path = _report(tmp_path, target=ran_on)
    with pytest.raises(ReportError) as caught:
        load_report_of(path, reader)
    message = str(caught.value)
    assert f"is a golden run on the '{ran_on}' target" in message and f"not the {reader} target's" in message
    assert message.endswith("--target cloud`") == (reader == "cloud")


@pytest.mark.parametrize("fields", [{"target": "local"}, {}])
def test_the_targets_own_report_or_one_naming_none_is_read(tmp_path: Path, fields: dict) -> None:
    assert load_report_of(_report(tmp_path, **fields), "local")["stack"] == "staging"
