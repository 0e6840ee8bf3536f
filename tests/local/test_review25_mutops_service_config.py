"""StackDir.service_config, which `goldgate status` reads for the workflow version a running stack serves: a
service.json that is valid JSON but no object (a hand edit, a broken disk) reads as none, as an unreadable one
does, so status still answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goldgate.local.state import StackDir


@pytest.mark.parametrize(("text", "expected"), [
    ('{"workflow_version": "sdxl@1.0.0"}', {"workflow_version": "sdxl@1.0.0"}),
    ('["sdxl@1.0.0"]', None), ('"sdxl@1.0.0"', None), ("null", None), ("not json", None), ("", None),
])
def test_a_service_config_that_is_no_object_reads_as_none(tmp_path: Path, text: str, expected: object) -> None:
    d = StackDir(tmp_path, "staging")
    d.root.mkdir(parents=True)
    (d.root / "service.json").write_text(text)
    assert d.service_config() == expected


@pytest.mark.parametrize("version", [5, "", ["sdxl@1.0.0"], None])
def test_status_shows_the_stacks_file_version_when_the_served_one_is_no_name(tmp_path: Path, version: object) -> None:
    from goldgate.local.platform import LocalPlatform

    d = StackDir(tmp_path, "staging")
    d.root.mkdir(parents=True)
    (d.root / "service.json").write_text(json.dumps({"workflow_version": version}))
    assert LocalPlatform._served_workflow_version(d, {"api_url": "http://127.0.0.1:1"}) is None
