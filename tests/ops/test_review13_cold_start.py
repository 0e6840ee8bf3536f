"""The cold-start line judges the pinned image's first job (its first cold start) and its jobs that failed while the
engine started, as the other job lines judge the pinned image's jobs. Before, it judged the first job the stack ever
ran: an older image's failed start kept a clean image red, and a new image whose first job failed passed."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from ops_fixtures import NEW_TAG, OLD_TAG, build_stack_db
from test_checklist import healthy  # noqa: F401 -- the module's healthy deployment, a pytest fixture

from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, read_job_facts

NOT_READY = ("ComfyUI at http://127.0.0.1:8188 was not ready after 300 s (last: cannot reach ComfyUI at "
             "http://127.0.0.1:8188 (GET /system_stats): [Errno 111] Connection refused); it may still be loading "
             "models (COMFY_READY_TIMEOUT_S bounds this wait, COMFY_JOB_TIMEOUT_S the whole job) or have crashed "
             "(see its log); the worker asks RunPod to replace it")
# service/transitions.py's text for a TIMED_OUT delivery: a cold start that outlasted the execution timeout
TIMED_OUT = "RunPod reported TIMED_OUT: the job exceeded its execution timeout or TTL"
# images/worker ComfyDown from the readiness wait: ComfyUI's process exited before it ever answered
CRASHED = ("ComfyUI exited before it answered at http://127.0.0.1:8188 (its process 57 is gone; last: cannot reach "
           "ComfyUI at http://127.0.0.1:8188 (GET /system_stats): timed out): it crashed while starting (see its "
           "log) and nothing restarts it; the worker asks RunPod to replace it")


def _db(tmp_path: Path, first_image: str, jobs: int = 40) -> Path:
    """Jobs alternating between the two images, `first_image` running the very first job; none failed."""
    tags = (NEW_TAG, OLD_TAG) if first_image == OLD_TAG else (OLD_TAG, NEW_TAG)
    return build_stack_db(tmp_path / "db.sqlite", jobs=jobs, fail_every=10_000, tags=tags)


def _fail(db: Path, job_id: str, status: str, error: str) -> None:
    conn = sqlite3.connect(db)
    with conn:
        assert conn.execute("UPDATE jobs SET status = ?, error = ?, results_json = NULL WHERE id = ?",
                            (status, error, job_id)).rowcount == 1
        conn.execute("UPDATE job_metrics SET status = ? WHERE job_id = ?", (status, job_id))
    conn.close()


def _line(facts: Facts, db: Path, image: str = NEW_TAG) -> checklist.CheckResult:
    facts = dataclasses.replace(facts, jobs=read_job_facts(db), images={**facts.images, "staging": image})
    return next(r for r in checklist.run_checks(facts) if r.id == "cold_start")


def test_an_older_images_failed_first_start_does_not_keep_the_pinned_clean_image_red(healthy, tmp_path):  # noqa: F811
    # The very first job ran on the older image and its engine never came up. Before: FAIL "first job failed; 1
    # job(s) failed while the engine was starting" for every image pinned since.
    db = _db(tmp_path, first_image=OLD_TAG)
    _fail(db, "job-0000001", "failed", NOT_READY)
    line = _line(healthy, db)
    assert line.status == checklist.PASS, line.evidence
    assert f"the first job of {NEW_TAG} (job-0000002, a cold start) completed" in line.evidence
    # the older image, pinned again, is still judged by its own failed start
    back = _line(healthy, db, OLD_TAG)
    assert back.status == checklist.FAIL
    assert f"the first job of {OLD_TAG} (a cold start), job-0000001, ended failed: " in back.evidence
    assert "was not ready after 300 s" in back.evidence and "COMFY_READY_TIMEOUT_S" in back.evidence


def test_the_pinned_images_first_job_timing_out_at_its_cold_start_turns_the_line_red(healthy, tmp_path):  # noqa: F811
    # The older image ran first and cleanly; the new image's first job outlasted the execution timeout while its
    # ComfyUI loaded. Before: PASS "the first job (a cold start) completed" (the first job ever, the older image's).
    db = _db(tmp_path, first_image=OLD_TAG)
    _fail(db, "job-0000002", "timed_out", TIMED_OUT)
    line = _line(healthy, db)
    assert line.status == checklist.FAIL, line.evidence
    assert (f"the first job of {NEW_TAG} (a cold start), job-0000002, ended timed_out: "
            f"'{TIMED_OUT}'") in line.evidence


def test_a_later_job_whose_comfyui_crashed_while_starting_counts_as_a_failed_cold_start(healthy, tmp_path):  # noqa: F811
    # A worker RunPod added later (another cold start): its ComfyUI exited before it answered. Before: PASS, the
    # text matched none of the cold-start patterns.
    db = _db(tmp_path, first_image=OLD_TAG)
    _fail(db, "job-0000020", "failed", CRASHED)
    line = _line(healthy, db)
    assert line.status == checklist.FAIL, line.evidence
    assert f"1 job(s) of {NEW_TAG} failed while the engine was starting (newest job-0000020: " in line.evidence
    assert "crashed while starting" in line.evidence
    # an older image's crashed start is that image's, not the pinned one's
    older = _db(tmp_path / "older", first_image=OLD_TAG)
    _fail(older, "job-0000021", "failed", CRASHED)
    assert _line(healthy, older).status == checklist.PASS


def test_the_pinned_images_first_job_still_running_is_not_yet_a_completed_cold_start(healthy, tmp_path):  # noqa: F811
    db = _db(tmp_path, first_image=OLD_TAG)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE jobs SET status = 'in_progress', results_json = NULL WHERE id = 'job-0000002'")
    conn.close()
    line = _line(healthy, db)
    assert line.status == checklist.FAIL
    assert "job-0000002, has not ended (in_progress): the cold start is judged once it has" in line.evidence


def test_a_pinned_image_no_job_ran_on_yet_has_no_cold_start_to_judge(healthy, tmp_path):  # noqa: F811
    fresh = "local/worker@sha256:" + "c" * 64
    db = _db(tmp_path, first_image=OLD_TAG)
    _fail(db, "job-0000001", "failed", NOT_READY)
    line = _line(healthy, db, fresh)
    assert line.status == checklist.NA and f"no job has run on {fresh}" in line.evidence
