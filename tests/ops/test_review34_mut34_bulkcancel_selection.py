"""Which jobs `goldgate cancel --all-queued|--all-active` selects from a stack's SQLite, read as the command reads it
(bulk_cancel.select_local): --all-queued never takes the job on a GPU, a window takes a job created at its start and
not one created at its end, and a database holding another stack's jobs is refused before any id is sent. The local
stack test (tests/local/test_review33_bulkcancel_local_stack.py) selects within windows that leave these edges out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ops_fixtures import build_stack_db, run_sql

from goldgate.errors import GoldgateError
from goldgate.ops import bulk_cancel
from goldgate.ops.bulk_cancel import Selection

STACK = "staging"
SDXL, FLUX = "sdxl-txt2img", "flux-schnell-lora"
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def _iso(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# job id -> (status, workflow, seconds after T0): the unfinished jobs; the fixture's others are completed or failed
UNFINISHED = {
    "job-0000001": ("in_progress", SDXL, 0),  # on a GPU, the oldest
    "job-0000002": ("queued", SDXL, 10),      # created at the window's start
    "job-0000003": ("queued", SDXL, 20),
    "job-0000004": ("queued", FLUX, 25),
    "job-0000005": ("queued", SDXL, 30),      # created at the window's end
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = build_stack_db(tmp_path / "db.sqlite", 12, stack=STACK)
    run_sql(path, *[f"UPDATE jobs SET status = '{status}', workflow_id = '{workflow}', created_at = '{_iso(s)}', "
                    f"created_at_ms = {bulk_cancel.epoch_ms(_iso(s))} WHERE id = '{job_id}'"
                    for job_id, (status, workflow, s) in UNFINISHED.items()])
    return path


def _ids(db: Path, selection: Selection) -> list[str]:
    return [job.id for job in bulk_cancel.select_local(db, STACK, selection).jobs]


def test_all_queued_leaves_the_job_on_a_gpu_and_all_active_takes_it_first(db: Path) -> None:
    assert _ids(db, Selection(bulk_cancel.QUEUED)) == ["job-0000002", "job-0000003", "job-0000004", "job-0000005"]
    assert _ids(db, Selection(bulk_cancel.ACTIVE)) == ["job-0000001", "job-0000002", "job-0000003", "job-0000004",
                                                       "job-0000005"]
    selected = bulk_cancel.select_local(db, STACK, Selection(bulk_cancel.QUEUED))
    assert {job.status for job in selected.jobs} == {"queued"} and selected.matched == 4


def test_a_window_takes_a_job_created_at_its_start_and_not_one_created_at_its_end(db: Path) -> None:
    window = Selection(bulk_cancel.QUEUED, created_after=_iso(10), created_before=_iso(30))
    assert _ids(db, window) == ["job-0000002", "job-0000003", "job-0000004"]
    assert bulk_cancel.select_local(db, STACK, window).matched == 3
    one_workflow = Selection(bulk_cancel.QUEUED, SDXL, created_after=_iso(10), created_before=_iso(30))
    assert _ids(db, one_workflow) == ["job-0000002", "job-0000003"]
    # the window that ends where the last began takes the one before it: two windows end to end select each job once
    assert _ids(db, Selection(bulk_cancel.QUEUED, created_after=_iso(30))) == ["job-0000005"]


def test_a_database_holding_another_stacks_jobs_is_refused_before_any_is_sent(db: Path) -> None:
    run_sql(db, "UPDATE jobs SET stack = 'prod' WHERE id = 'job-0000003'")
    with pytest.raises(GoldgateError) as refused:
        bulk_cancel.select_local(db, STACK, Selection(bulk_cancel.QUEUED))
    message = str(refused.value)
    assert "holds the jobs of stack 'prod', not of staging" in message and "--database-id" in message, message
