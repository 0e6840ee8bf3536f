"""The checklist's "STAGING configured separately from PROD" line compares every bucket of one stack with every
bucket of the other. It compared each name only with the same one of the other stack, so a PROD whose backups
bucket was STAGING's results bucket passed: STAGING's workers, which hold a token for that bucket, would read
PROD's database backups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.commands import ops
from goldgate.local.platform import LocalPlatform

pytestmark = pytest.mark.usefixtures("scan_once")  # checklist runs scan service/ once (conftest.py)


def _separate(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
              storage: dict[str, dict[str, str]]) -> dict:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    for stack, fields in storage.items():
        doc["stacks"][stack]["storage"].update(fields)
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    platform = LocalPlatform(tmp_path / "home", path)
    monkeypatch.setattr(ops, "_platform", lambda _args: platform)  # the CLI reads this test's stacks file
    main(["checklist", "staging", "--home", str(platform.home), "--offline", "--json"])
    return next(c for c in json.loads(capsys.readouterr().out)["checks"] if c["id"] == "staging_separate")


def test_prods_backups_in_stagings_results_bucket_is_not_separate(tmp_path, capsys, monkeypatch):
    staging = specs.load_local("staging")
    line = _separate(tmp_path, capsys, monkeypatch, {"prod": {"backup_bucket": staging.storage.bucket}})
    assert line["status"] == "fail", line
    assert f"STAGING's storage.bucket is PROD's storage.backup_bucket ({staging.storage.bucket})" in line["evidence"]


def test_stagings_backups_in_prods_results_bucket_is_not_separate(tmp_path, capsys, monkeypatch):
    prod = specs.load_local("prod")
    line = _separate(tmp_path, capsys, monkeypatch, {"staging": {"backup_bucket": prod.storage.bucket}})
    assert line["status"] == "fail", line
    assert f"STAGING's storage.backup_bucket is PROD's storage.bucket ({prod.storage.bucket})" in line["evidence"]


def test_the_shipped_stacks_and_a_shared_name_are_judged_as_before(tmp_path, capsys, monkeypatch):
    assert _separate(tmp_path, capsys, monkeypatch, {})["status"] == "pass"
    shared = _separate(tmp_path, capsys, monkeypatch, {"staging": {"backup_bucket": "goldgate-shared-backups"},
                                                       "prod": {"backup_bucket": "goldgate-shared-backups"}})
    assert shared["status"] == "fail" and shared["evidence"] == "STAGING and PROD share: backup_bucket", shared
