"""Two checklist lines, as `goldgate checklist` prints them:

- "Logging schema v1 ครบทุกจุด" (at every point) judges the release commands' log, <home>/logs/release.jsonl (the
  promotions, rollbacks, gate refusals and golden verdicts a team alerts on), with the stack's logs dir: an invalid
  line there is named, a valid one is counted and the file named in the evidence;
- the P50/P95/P99 line over job_metrics rows none of which has an end-to-end time (every job settled by a recovery)
  says so, instead of "no rows"."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ops_fixtures import build_stack_db

from goldgate.cli import main
from goldgate.logs import JsonLogger
from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts
from goldgate.ops.metrics_report import report_from_sqlite
from goldgate.release.ledger import Ledger

pytestmark = pytest.mark.usefixtures("scan_once")  # checklist runs scan service/ once (conftest.py)

IMAGE = "local/worker@sha256:" + "a" * 64


def _home(tmp_path: Path) -> Path:
    """A home whose staging stack logged one valid line, and whose ledger recorded a build (release.jsonl)."""
    home = tmp_path / "home"
    logs = home / "stacks" / "staging" / "logs"
    logs.mkdir(parents=True)
    with (logs / "service.jsonl").open("w") as fh:
        JsonLogger("service", fh, stack="staging", workflow_version="2026.11.0").info("service.started")
    Ledger(home).append("build", image=IMAGE, release_id="r-1")
    assert (home / "logs" / "release.jsonl").is_file()
    return home


def _logs_line(capsys, home: Path) -> dict:
    capsys.readouterr()
    main(["checklist", "staging", "--home", str(home), "--offline", "--json"])
    (check,) = [c for c in json.loads(capsys.readouterr().out)["checks"] if c["id"] == "logs_schema_v1"]
    return check


def test_the_logging_line_judges_the_release_log_too(tmp_path, capsys):
    home = _home(tmp_path)
    release_log = home / "logs" / "release.jsonl"
    check = _logs_line(capsys, home)
    assert check["status"] == "pass", check
    assert "2 lines in 2 files" in check["evidence"] and str(release_log) in check["evidence"], check

    with release_log.open("a") as fh:  # a line an older goldgate, or a hand, wrote without the required fields
        fh.write(json.dumps({"schema": "goldgate.log.v1", "ts": "2026-11-30T10:00:00.000Z", "level": "info",
                             "event": "release.promoted", "component": "release"}) + "\n")
    check = _logs_line(capsys, home)
    assert check["status"] == "fail", check
    assert check["evidence"].startswith("1 invalid lines: ") and f"{release_log}:2: " in check["evidence"], check


def test_the_release_log_alone_is_no_stack_log(tmp_path, capsys):
    home = _home(tmp_path)
    (home / "stacks" / "staging" / "logs" / "service.jsonl").unlink()
    check = _logs_line(capsys, home)
    assert (check["status"], check["evidence"]) == ("fail", "no log lines found under the stack's logs dir")


def test_percentiles_over_rows_without_an_end_to_end_time_say_so(tmp_path):
    db = build_stack_db(tmp_path / "db.sqlite", jobs=20)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE job_metrics SET e2e_ms = NULL")  # every job settled by `goldgate recover`
    status, evidence = checklist.percentiles(Facts(stack="staging", now=datetime.now(UTC),
                                                   metrics=report_from_sqlite(db, "staging")))
    assert status == checklist.FAIL
    assert evidence.startswith("P50/P95/P99 not computable: none of the 20 job_metrics rows has an end-to-end time")
    assert "no rows" not in evidence
