"""The checklist on a real local deployment: release through the pipeline, drill, then every line is green."""

from __future__ import annotations

import json

import pytest

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform

pytestmark = pytest.mark.usefixtures("scan_once")  # checklist runs scan service/ once (conftest.py)


def test_checklist_passes_every_applicable_line_on_a_healthy_local_deployment(tmp_path, capsys):
    home, reports = tmp_path / "home", tmp_path / "reports"
    platform = LocalPlatform(home)
    try:
        # build -> deploy STAGING -> golden -> promote PROD -> smoke, all through the real CLI
        assert main(["release", "--home", str(home), "--reports-dir", str(reports)]) == 0
        assert main(["dr-drill", "staging", "--home", str(home)]) == 0
        capsys.readouterr()
        code = main(["checklist", "staging", "--home", str(home), "--reports-dir", str(reports), "--json"])
        data = json.loads(capsys.readouterr().out)
        failing = {c["id"]: c["evidence"] for c in data["checks"] if c["status"] == "fail"}
        assert failing == {} and code == 0
        statuses = {c["id"]: c["status"] for c in data["checks"]}
        # the live lines really ran against the stack: a replayed webhook changed nothing
        for line in ("webhook_idempotent", "status_completed", "result_via_api", "logs_schema_v1", "startup_log"):
            assert statuses[line] == "pass", line
        na = {c["id"] for c in data["checks"] if c["status"] == "n/a"}
        assert na <= {"rollback_ready", "rollback_smoke", "d1_retention"}  # one release, no rollback; local: no D1 cap
    finally:
        for stack in ("staging", "prod"):
            platform.down(stack)
