"""What `goldgate cancel --all-queued|--all-active` tells its user: up to three failures of one reason each with its
message, more as one explanation then one line a job; a run stopped by a refused token says how many were not
sent and that the same command sends them; a long run says how far it got every hundred answers; and a database
that is no goldgate stack's says so, not that the file is damaged. A job the service never submitted (409
`not_submitted`) is settled by a recovery, as one RunPod has no record of: its line is the recovery's. A preview
lists the workflows most first and the span of creation times its jobs cover."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from goldgate.errors import GoldgateError
from goldgate.ops import bulk_cancel
from goldgate.ops.bulk_cancel import JobResult, SelectedJob, Selection

SDXL = "sdxl-txt2img"


def _job(n: int) -> SelectedJob:
    return SelectedJob(f"{n:032x}", SDXL, "queued", "2026-12-01T03:00:00.000Z")


def _failed(job: SelectedJob, reason: str) -> JobResult:
    return JobResult(job.id, job.workflow_id, job.status, job.created_at, "failed", None, reason,
                     f"502 {reason}: RunPod refused it ({job.id[-2:]})", 4, f"goldgate cancel {job.id} --stack prod")


def _text(jobs: list[SelectedJob], results: list[JobResult], stopped: str | None = None) -> str:
    report = bulk_cancel.report("prod", "local", Selection(bulk_cancel.QUEUED), bulk_cancel.Selected(jobs, len(jobs)),
                                "goldgate cancel --all-queued --stack prod --yes", results, None, stopped)
    return bulk_cancel.render_text(report.to_dict())


def test_three_failures_of_a_reason_are_each_told_and_four_are_told_once() -> None:
    three, four = [_job(n) for n in range(1, 4)], [_job(n) for n in range(11, 15)]
    text = _text(three + four, [_failed(j, "runpod_refused") for j in three] + [_failed(j, "http_502") for j in four])
    for job in three:
        assert f"  FAILED {job.id}: 502 runpod_refused: RunPod refused it" in text, text
    assert f"  FAILED 4 jobs (http_502), e.g. {four[0].id}: 502 http_502" in text, text
    assert "FAILED 3 jobs" not in text and f"  FAILED {four[1].id}" not in text, text
    assert all(f"\n      goldgate cancel {job.id} --stack prod" in text for job in three + four)


def test_a_run_a_refused_token_stopped_says_how_many_were_not_sent_and_how_to_send_them() -> None:
    jobs = [_job(n) for n in range(1, 6)]
    results = [_failed(jobs[0], "unauthorized")] + [
        JobResult(j.id, j.workflow_id, j.status, j.created_at, "not_sent", retry=f"goldgate cancel {j.id}")
        for j in jobs[1:]]
    text = _text(jobs, results, stopped="401 unauthorized: the stack's API refused the token")
    assert "  stopped: 401 unauthorized: the stack's API refused the token" in text, text
    assert "  stopped: 4 jobs not sent; run the command again to cancel them" in text, text


def test_a_long_run_says_how_far_it_got_every_hundred_answers() -> None:
    said: list[str] = []

    def send(job_id: str) -> bulk_cancel.Answer:
        return bulk_cancel.Answer("cancelled", "cancelled", "applied", "cancelled")

    results, _, _ = bulk_cancel.cancel_all([_job(n) for n in range(200)], send, lambda j: j,
                                           pace=bulk_cancel.Pace(per_window=1_000), progress=said.append)
    assert len(results) == 200
    assert "100 of 200 answered: 100 cancelled, 0 had ended, 0 failed" in said, said
    assert "200 of 200 answered: 200 cancelled, 0 had ended, 0 failed" in said, said


def test_a_database_without_goldgates_jobs_table_is_named_so_not_damaged(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as conn:  # a database, but no stack's
        conn.execute("CREATE TABLE notes (id TEXT)")
    with pytest.raises(GoldgateError) as refused:
        bulk_cancel.select_local(path, "staging", Selection(bulk_cancel.QUEUED))
    message = str(refused.value)
    assert "has no jobs table goldgate made" in message and "goldgate up staging" in message, message
    assert "damaged" not in message


def test_a_job_never_submitted_gets_the_recover_line_not_the_same_cancel_again() -> None:
    def send(job_id: str) -> bulk_cancel.Answer:
        return bulk_cancel.Answer("failed", None, "not_submitted", "409 not_submitted: job has no RunPod id recorded")

    results, _, _ = bulk_cancel.cancel_all([_job(1)], send, lambda j: f"goldgate cancel {j} --stack prod",
                                           recover_line=lambda j: f"goldgate recover {j} --stack prod")
    assert [(r.outcome, r.retry) for r in results] == [("failed", f"goldgate recover {_job(1).id} --stack prod")]
    assert "no cancel can settle it" in _text([_job(1)], results)


def test_a_preview_lists_the_workflows_most_first_and_the_span_of_creation_times() -> None:
    jobs = [SelectedJob(f"{n:032x}", workflow, "queued", created) for n, (workflow, created) in enumerate([
        ("flux-schnell-lora", "2026-12-01T03:00:00.000Z"), (SDXL, "2026-12-01T03:00:01.000Z"),
        (SDXL, "2026-12-01T03:00:02.000Z"), (SDXL, "2026-12-01T03:07:00.000Z")])]
    preview = bulk_cancel.report("prod", "local", Selection(bulk_cancel.QUEUED), bulk_cancel.Selected(jobs, 4),
                                 "goldgate cancel --all-queued --stack prod --yes")
    assert list(preview.by_workflow) == [SDXL, "flux-schnell-lora"]
    text = bulk_cancel.render_text(preview.to_dict())
    assert text.index(f"  {SDXL}") < text.index("  flux-schnell-lora"), text
    assert "  created 2026-12-01T03:00:00.000Z to 2026-12-01T03:07:00.000Z" in text, text
