"""The checklist lines the on-call rehearsal (review 28) found failing with no true way out.

- Right after a same-image redeploy (the secret rotation's step 3) no job of the new window has run: cold_start,
  error_rate and mean_latency said n/a, all_jobs_images failed "no completed job of ... since deploy #N".
- A pin STAGING's host serves that no recorded deploy put there (a deploy cut short, which `goldgate up` completed):
  staging_image_pipeline said "pinned by hand?", pipeline_complete "missing deploy staging", neither what records it;
  once recorded by a deploy that kept the warm workers, the start-up line failed for want of a worker started since.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from checklist_support import checklist_checks, released_locally

from goldgate.cli import main
from goldgate.logs import JsonLogger
from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, read_log_facts, serving_window
from goldgate.release.ledger import Entry

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


def test_right_after_a_same_image_redeploy_the_jobs_line_waits_for_a_job(tmp_path, capsys):
    with released_locally(tmp_path) as (home, reports, platform):
        image = platform.pinned_image("staging")
        assert main(["deploy", "staging", "--image", image, "--home", str(home)]) == 0   # the rotation's step 3
        checks = checklist_checks(capsys, "staging", home, reports)
    line = checks["all_jobs_images"]
    # before: FAIL "no completed job of <image> since deploy #N ..." while the lines beside it said n/a
    assert line["status"] == "n/a", line
    assert "no job has run on" in line["evidence"] and "run `goldgate golden staging`" in line["evidence"], line
    assert [checks[i]["status"] for i in ("cold_start", "error_rate", "mean_latency")] == ["n/a"] * 3
    assert checks["startup_log"]["status"] == "pass", checks["startup_log"]


def _ts(second: int) -> str:
    return f"2026-12-01T10:00:{second:02d}.000Z"


def _deploys(*steps: tuple[int, str | None, str]) -> tuple[Entry, ...]:
    return tuple(Entry(seq=i, ts=_ts(second), kind="deploy", fields={"stack": "staging", "before": before,
                                                                    "after": after, "image": after, "target": "local"},
                       prev="", hash="", authentic=True) for i, (second, before, after) in enumerate(steps, start=1))


def test_a_served_pin_no_deploy_recorded_is_named_with_the_deploy_that_records_it():
    facts = Facts(stack="staging", now=datetime.now(UTC), images={"staging": B}, served={"staging": B},
                  ledger=_deploys((1, None, A)))
    status, evidence = checklist.staging_image_via_pipeline(facts)
    assert status == checklist.FAIL and "pinned by hand" not in evidence, evidence
    assert f"`goldgate deploy staging --image {B}` records it, then `goldgate golden staging`" in evidence
    # a pin no host serves (down, or another image served) keeps the old question
    for served in ({}, {"staging": A}):
        status, evidence = checklist.staging_image_via_pipeline(
            Facts(stack="staging", now=datetime.now(UTC), images={"staging": B}, served=served,
                  ledger=_deploys((1, None, A))))
        assert status == checklist.FAIL and "pinned by hand?" in evidence, evidence


def test_the_pipeline_line_names_the_deploy_staging_runs_without_a_record():
    ledger = _deploys((1, None, A)) + (
        Entry(seq=2, ts=_ts(3), kind="build", fields={"image": B, "target": "local"}, prev="", hash="",
              authentic=True),
        Entry(seq=3, ts=_ts(5), kind="golden", fields={"stack": "staging", "image": B, "passed": True,
                                                       "target": "local"}, prev="", hash="", authentic=True),
        Entry(seq=4, ts=_ts(7), kind="promotion", fields={"phase": "outcome", "outcome": "promoted", "image": B,
                                                          "target": "local"}, prev="", hash="", authentic=True))
    facts = Facts(stack="prod", now=datetime.now(UTC), images={"staging": B, "prod": B}, ledger=ledger)
    status, evidence = checklist.pipeline_complete(facts)
    assert status == checklist.FAIL and f"`goldgate deploy staging --image {B}`" in evidence, evidence


def _models_loaded(directory: Path, image: str, second: int) -> None:
    buffer = io.StringIO()
    JsonLogger("worker", buffer, stack="staging", workflow_version="2026.11.0",
               worker_image_tag=image).info("models_loaded", message="6 model files present")
    line = json.loads(buffer.getvalue())
    line["ts"] = _ts(second)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"worker-{second}.log").write_text(json.dumps(line) + "\n")


def test_warm_workers_of_an_unrecorded_pin_are_not_held_against_the_deploy_that_recorded_it(tmp_path):
    # A recorded; B pinned by a deploy cut short (nothing recorded), `up` started B's workers (second 3), then the
    # advised `goldgate deploy staging --image B` recorded B over B (second 9), keeping those workers
    window = serving_window(_deploys((1, None, A), (9, B, B)), "staging", "staging", B)
    _models_loaded(tmp_path / "logs", B, 3)
    logs = read_log_facts(tmp_path / "logs", windows={B: window})
    status, evidence = checklist.startup_log(Facts(stack="staging", now=datetime.now(UTC), images={"staging": B},
                                                   logs=logs))
    # before: FAIL "no `models_loaded` line from a worker of ... since deploy #2"
    assert status == checklist.NA and "1 `models_loaded` line(s)" in evidence, evidence
    # switched to B from A by a recorded deploy: B's lines from before it are another spell's workers, as before
    switched = serving_window(_deploys((1, None, A), (9, A, B)), "staging", "staging", B)
    logs = read_log_facts(tmp_path / "logs", windows={B: switched})
    status, _ = checklist.startup_log(Facts(stack="staging", now=datetime.now(UTC), images={"staging": B}, logs=logs))
    assert status == checklist.FAIL
