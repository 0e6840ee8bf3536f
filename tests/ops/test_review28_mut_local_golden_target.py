"""A cloud golden run in latest.json is no evidence for a local stack's checklist (session 28 mutation audit: the
local checklist's read of the report went unchecked; only the cloud checklist's refusal of a local run was tested).
The local and the cloud golden runs write the same latest.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from goldgate.cli import main

IMG = "local/worker@sha256:" + "c" * 64


def test_a_cloud_golden_run_in_latest_json_is_no_evidence_for_the_local_checklist(capsys, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "latest.json").write_text(json.dumps({
        "schema": "goldgate.golden-report.v1", "suite": "full", "stack": "staging", "image": IMG, "passed": True,
        "target": "cloud", "finished_at": datetime.now(UTC).isoformat(), "failures": [], "latency_s": {"mean": 3.0},
        "cases": []}))
    main(["checklist", "staging", "--offline", "--json", "--home", str(tmp_path / "home"),
          "--reports-dir", str(reports)])
    checks = {c["id"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    for line in ("golden_against_staging", "golden_report_latest"):
        assert checks[line]["status"] == "fail", (line, checks[line])
        assert "is a golden run on the 'cloud' target" in checks[line]["evidence"], (line, checks[line])
        assert "not the local target's" in checks[line]["evidence"]
