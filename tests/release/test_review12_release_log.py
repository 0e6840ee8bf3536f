"""Release events reach the log pipeline: every ledger append also writes one schema-v1 line (component `release`) to
`<home>/logs/release.jsonl`. Before, promotions, rollbacks, gate refusals and golden verdicts were in the ledger and
on the terminal only, and a team alerting on its logs never heard of a failed rollback. The line carries the
release's trace (stack, image, workflow version, ledger seq, outcome), never the ledger key, and a log that cannot be
written never stops a release."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import Target, _released, _staging_passes

from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths

REPO = Path(__file__).resolve().parents[2]
SCHEMA = jsonschema.Draft202012Validator(json.loads((REPO / "docs/logging-schema-v1.json").read_text()),
                                         format_checker=jsonschema.FormatChecker())
KEY = "k3y-" + "f" * 60
A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
C = "local/worker@sha256:" + "c" * 64
GATE = {"passed": False, "image": B, "conditions": [
    {"name": "report_fresh", "passed": False, "detail": "the report is 3 days old (limit 24 h)"},
    {"name": "report_passed", "passed": True, "detail": "all cases passed"}]}


def _lines(home: Path) -> list[dict[str, Any]]:
    lines = [json.loads(text) for text in (home / "logs/release.jsonl").read_text().splitlines()]
    for line in lines:
        SCHEMA.validate(line)
    return lines


def _a_release_that_failed_on_prod(ledger: Ledger) -> None:
    """What build, STAGING, a refused and a failed promotion, its automatic rollback and a manual one append."""
    ledger.append("build", image=A, release_id="r1", workflow_version="wf-7", target="local", trigger="test")
    ledger.append("build", image=B, release_id="r2", workflow_version="wf-8", target="local", trigger="test")
    ledger.append("deploy", stack="staging", target="local", before=A, after=B, image=B, trigger="test")
    ledger.append("golden", stack="staging", image=B, suite="full", passed=True, report="r.json", cases=2,
                  failures=[], trigger="test")
    ledger.append("promotion", phase="refused", stack="prod", image=B, gate=GATE, trigger="test")
    ledger.append("promotion", phase="intent", stack="prod", image=B, release_id="r2", before=A, trigger="test")
    ledger.append("golden", stack="prod", image=B, suite="smoke", passed=False, report="s.json", cases=1,
                  failures=["smoke-1: no image came back"], trigger="test")
    ledger.append("rollback", phase="intent", stack="prod", image=A, release_id="r1", before=B,
                  reason=f"automatic: promotion of {B} smoke failed", trigger="test")
    ledger.append("rollback", phase="outcome", intent_seq=8, stack="prod", image=A, before=B, after=A,
                  prod_image=A, pinned=A, outcome="rolled_back", smoke_passed=True, reason="manual", trigger="test")
    ledger.append("promotion", phase="outcome", intent_seq=6, stack="prod", image=B, before=A, after=A, pinned=A,
                  prod_image=None, outcome="smoke_failed", error="smoke-1: no image came back",
                  rollback={"outcome": "rolled_back", "image": A}, trigger="test")
    ledger.append("rollback", phase="intent", stack="prod", image=B, before=A, reason="manual", trigger="test")
    ledger.append("rollback", phase="outcome", intent_seq=11, stack="prod", image=B, before=A, after=B,
                  prod_image=None, pinned=B, outcome="deploy_failed", error="the stack did not take it",
                  trigger="test")


def test_every_ledger_append_writes_one_schema_v1_release_line_with_the_release_trace(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, key=KEY.encode())
    _a_release_that_failed_on_prod(ledger)
    lines = _lines(tmp_path)
    assert [(line["event"], line["level"]) for line in lines] == [
        ("release.built", "info"), ("release.built", "info"), ("release.deployed", "info"),
        ("release.golden_passed", "info"), ("release.gate_refused", "warning"),
        ("release.promotion_started", "info"), ("release.golden_failed", "error"),
        ("release.rollback_started", "warning"), ("release.rolled_back", "warning"),
        ("release.promotion_failed", "error"), ("release.rollback_started", "warning"),
        ("release.rollback_failed", "error")]
    assert {line["component"] for line in lines} == {"release"}
    assert [line["data"]["seq"] for line in lines] == [e.seq for e in ledger.entries()]
    refused, failed, rollback_failed = lines[4], lines[9], lines[11]
    assert (refused["stack"], refused["worker_image_tag"], refused["workflow_version"]) == ("prod", B, "wf-8")
    assert refused["reason"] == "report_fresh" and "the report is 3 days old" in refused["message"]
    assert failed["status"] == "smoke_failed" and failed["error"]["message"] == "smoke-1: no image came back"
    assert f"automatic rollback to {A}: rolled_back" in failed["message"]
    assert failed["data"]["intent_seq"] == 6 and failed["data"]["kind"] == "promotion"
    assert (rollback_failed["worker_image_tag"], rollback_failed["workflow_version"]) == (B, "wf-8")
    assert lines[6]["message"].endswith("; smoke-1: no image came back")


def test_a_failed_promotion_and_its_automatic_rollback_reach_the_release_log(tmp_path: Path,
                                                                              paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home, key=KEY.encode())
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {}, crash={C})   # C's PROD deploy dies after the pin
        _released(target, ledger, home, paths, A, B)
        _staging_passes(target, ledger, paths, C)
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.outcome == "deploy_failed" and outcome.rollback is not None and outcome.rollback.ok
    lines = _lines(home)
    assert len(lines) == len(ledger.entries())
    last = [(line["event"], line["level"], line["worker_image_tag"]) for line in lines[-5:]]
    assert last == [("release.promotion_started", "info", C), ("release.rollback_started", "warning", B),
                    ("release.golden_passed", "info", B), ("release.rolled_back", "warning", B),
                    ("release.promotion_failed", "error", C)]
    failed = lines[-1]
    assert failed["stack"] == "prod" and failed["status"] == "deploy_failed"
    assert "ProcessLookupError" in failed["error"]["message"]
    assert f"automatic rollback to {B}: rolled_back" in failed["message"]
    assert lines[-2]["reason"] == f"automatic: promotion of {C} deploy failed"


def test_the_release_log_never_holds_the_ledger_key_nor_a_mac(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, key=KEY.encode())
    ledger.append("rollback", phase="outcome", stack="prod", image=A, outcome="smoke_failed",
                  error=f"the deploy echoed its environment: GOLDGATE_LEDGER_KEY={KEY}", trigger="test")
    text = (tmp_path / "logs/release.jsonl").read_text()
    assert KEY not in text and "[redacted]" in text
    assert ledger.entries()[0].mac is not None and ledger.entries()[0].mac not in text


@pytest.mark.parametrize("obstacle", ["fifo", "file_for_folder", "folder_for_file"])
def test_a_release_log_that_cannot_be_written_never_stops_the_ledger(obstacle: str, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    logs = tmp_path / "logs"
    if obstacle == "file_for_folder":
        logs.write_text("not a folder")
    else:
        logs.mkdir()
        if obstacle == "fifo":  # nobody reads it: opening it to write would wait for a reader for ever
            os.mkfifo(logs / "release.jsonl")
        else:
            (logs / "release.jsonl").mkdir()
    ledger = Ledger(tmp_path, key=None)
    appended: list[Any] = []

    def append_two() -> None:
        appended.append(ledger.append("promotion", phase="intent", stack="prod", image=B, before=A, trigger="test"))
        appended.append(ledger.append("promotion", phase="outcome", intent_seq=1, stack="prod", image=B,
                                      outcome="promoted", prod_image=B, trigger="test"))

    appender = threading.Thread(target=append_two, daemon=True)
    appender.start()
    appender.join(30)
    if appender.is_alive():  # waiting for a reader of the pipe: a failed test, not a CI run stuck for hours
        pytest.fail("the ledger append waited on the release log instead of going on without it")
    first, second = appended
    assert (first.seq, second.seq) == (1, 2) and len(ledger.entries()) == 2
    err = capsys.readouterr().err
    assert err.count("warning: ledger #1 is recorded, but its line could not be written to the release log "
                     f"{logs / 'release.jsonl'}") == 1
    assert "ledger #2" not in err        # warned once, not at every append of a promotion


def _files_limited_to(size: int):  # type: ignore[no-untyped-def]
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a refused write fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return limit


def test_a_log_line_cut_short_by_a_full_disk_is_taken_back_and_the_append_stands(tmp_path: Path) -> None:
    # The file size limit stands in for a full disk: the kernel writes what fits and refuses the rest. The log is
    # bigger than the ledger here, so the ledger's line fits and the log's is cut.
    ledger = Ledger(tmp_path, key=None)
    ledger.append("build", image=A, release_id="r1", workflow_version="wf-7", trigger="test")
    log = tmp_path / "logs/release.jsonl"
    log.write_text(log.read_text() * 20)
    before = log.read_bytes()
    append = ("import sys; from pathlib import Path; from goldgate.release.ledger import Ledger; "
              f"Ledger(Path(sys.argv[1]), key=None).append('build', image='{B}', release_id='r2', trigger='test')")
    proc = subprocess.run([sys.executable, "-c", append, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          check=False, preexec_fn=_files_limited_to(len(before) + 100), timeout=120)
    assert proc.returncode == 0 and "File too large" in proc.stderr and "Traceback" not in proc.stderr
    assert log.read_bytes() == before                  # no half line left for the next one to run into
    assert [e.seq for e in ledger.entries()] == [1, 2]
    ledger.append("build", image=B, release_id="r2", trigger="test")
    assert [line["data"]["seq"] for line in _lines(tmp_path)][-1] == 3


def _catalogued_release_events() -> set[tuple[str, str]]:
    """(event, level) of each row under docs/LOG_EVENTS.md's `component: release` heading."""
    rows, inside = set(), False
    for line in (REPO / "docs/LOG_EVENTS.md").read_text().splitlines():
        if line.startswith("## "):
            inside = "`component: release`" in line
        row = re.match(r"^\| `([^`]+)` \| ([a-z, ]+) \|", line)
        if row and inside:
            rows |= {(row.group(1), level.strip()) for level in row.group(2).split(",")}
    return rows


def test_docs_log_events_catalogues_exactly_the_release_events_and_their_levels() -> None:
    from goldgate.release.ledger import RELEASE_EVENTS, RELEASE_RECORDED

    assert _catalogued_release_events() == set(RELEASE_EVENTS.values()) | {RELEASE_RECORDED}
    text = (REPO / "docs/LOG_EVENTS.md").read_text()
    assert "<home>/logs/release.jsonl" in text and "have no events yet" not in text


def test_every_ci_job_that_writes_the_ledger_prints_its_release_log_whatever_happened() -> None:
    # On a CI runner the home dies with the job: the ledger reaches its branch, the release log only the job's output.
    import yaml

    root = Path(__file__).resolve().parents[2] / ".github" / "workflows"
    checked = 0
    for name in ("release.yml", "rollback.yml"):
        jobs = yaml.safe_load((root / name).read_text(encoding="utf-8"))["jobs"]
        for job_name, job in jobs.items():
            steps = job.get("steps") or []
            if not any("$RELEASE_LOCK" in str(step.get("run", "")) for step in steps):
                continue
            printing = [s for s in steps if "logs/release.jsonl" in str(s.get("run", ""))]
            assert printing and all(s.get("if") == "always()" for s in printing), f"{name}: {job_name}"
            checked += 1
    assert checked >= 4  # build, staging and promote in release.yml, rollback in rollback.yml
