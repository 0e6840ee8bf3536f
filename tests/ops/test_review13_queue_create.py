"""The "POST /api/queue/create submits work" line judges whether a create reaches RunPod now. A create RunPod refuses
(a wrong endpoint, a revoked key) answers 502 and leaves a failed job with no image, which no image's line judges;
before, the line passed on any job ever created."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from pathlib import Path

from ops_fixtures import build_stack_db
from test_checklist import healthy  # noqa: F401 -- the module's healthy deployment, a pytest fixture

from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, read_job_facts
from service import jobs
from service.runpod import RunPodRefused
from service.sqlite_database import SqliteDatabase

IMAGE = "local/worker@sha256:" + "b" * 64
LATER = datetime.fromisoformat("2026-11-02T00:00:00+00:00").timestamp()  # after the fixture's jobs


def _create(db_path: Path, job_id: str, at_s: float, refused: str | None, answered: bool = True) -> None:
    """A create as service/routes.py records it: the job, then RunPod's id or, refused, the failed submission
    (neither while its /run answer is not in)."""
    async def run() -> None:
        db = SqliteDatabase(db_path)
        try:
            await jobs.insert(db, jobs.NewJob(id=job_id, stack="staging", workflow_id="sdxl-txt2img",
                                              workflow_version="sdxl-txt2img@1.0.0", inputs={"prompt": "a lighthouse"},
                                              trace_id="f" * 32, created_at_s=at_s, worker_image_tag=IMAGE))
            if not answered:
                return
            if refused is None:
                await jobs.record_runpod_id(db, job_id, f"rp-{job_id}", at_s + 1)
            else:
                row = await jobs.get(db, job_id)
                assert await jobs.fail_submission(db, row, f"RunPod refused the job: {refused}", at_s + 1)
        finally:
            db.close()
    asyncio.run(run())


def _line(facts: Facts, db: Path) -> checklist.CheckResult:
    return next(r for r in checklist.run_checks(dataclasses.replace(facts, jobs=read_job_facts(db)))
                if r.id == "queue_create")


def test_the_newest_create_refused_by_runpod_turns_the_line_red_with_runpods_answer(healthy, tmp_path):  # noqa: F811
    db = build_stack_db(tmp_path / "db.sqlite", jobs=30, fail_every=10_000)
    _create(db, "job-new-1", LATER, str(RunPodRefused(401, "Unauthorized")))
    _create(db, "job-new-2", LATER + 60, str(RunPodRefused(401, "Unauthorized")))
    line = _line(healthy, db)
    assert line.status == checklist.FAIL, line.evidence
    assert "the newest job, job-new-2 (created 2026-11-02T00:01:00.000Z), never reached RunPod: RunPod refused the " \
           "job: RunPod answered HTTP 401: Unauthorized; 2 of 32 jobs were never taken" in line.evidence
    assert "RunPod API key" in line.evidence


def test_a_create_taken_since_the_refusals_leaves_the_line_green_and_counts_them(healthy, tmp_path):  # noqa: F811
    db = build_stack_db(tmp_path / "db.sqlite", jobs=30, fail_every=10_000)
    _create(db, "job-new-1", LATER, str(RunPodRefused(401, "Unauthorized")))
    _create(db, "job-new-2", LATER + 60, None)
    # a create whose /run answer is not in yet (queued, no RunPod id) says nothing either way
    _create(db, "job-new-3", LATER + 120, None, answered=False)
    line = _line(healthy, db)
    assert line.status == checklist.PASS, line.evidence
    assert line.evidence.startswith("33 jobs created through POST /api/queue/create")
    assert line.evidence.endswith("; 1 never reached RunPod, none since")
