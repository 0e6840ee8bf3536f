"""Purging an endpoint's queue leaves a trace: one `job.purged` line per dropped job, naming the service's job,
and a job that had run before (failed, retried, then purged) is forgotten by the emulator entirely."""

from __future__ import annotations

import json
from pathlib import Path

from emulator_harness import wait_for


def _lines(stack) -> list[dict]:
    text = (stack.emulator.logs_dir / "runpod-emulator.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_purged_jobs_are_logged_and_a_retried_one_is_forgotten(make_stack, tmp_path: Path) -> None:
    stack = make_stack()
    ep = stack.endpoint(workers_max=1)
    jobs = stack.jobs(ep.id)
    failed = stack.finished(jobs, jobs.run({"job_id": "svc-ran", "fail": "first attempt fails"}).id)
    assert failed.status == "FAILED"
    gate = tmp_path / "gate"
    gate.mkdir()
    busy = jobs.run({"job_id": "svc-busy", "hold": str(gate)})
    wait_for(lambda: jobs.status(busy.id).status == "IN_PROGRESS", "the only worker to be busy")
    assert jobs.retry(failed.id).status == "IN_QUEUE"
    fresh = jobs.run({"job_id": "svc-fresh", "trace_id": "0123456789abcdef0123456789abcdef"})
    assert jobs.purge_queue() == 2
    (gate / "release").mkdir()
    purged = [x for x in _lines(stack) if x["event"] == "job.purged"]
    assert {(x["runpod_job_id"], x["job_id"]) for x in purged} == {(failed.id, "svc-ran"), (fresh.id, "svc-fresh")}
    [fresh_line] = [x for x in purged if x["job_id"] == "svc-fresh"]
    assert fresh_line["trace_id"] == "0123456789abcdef0123456789abcdef"
    # The job that had run is no longer held anywhere in the emulator, not even the image that ran it.
    assert failed.id not in stack.emulator.backend.jobs
    assert failed.id not in stack.emulator._job_images
    assert busy.id in stack.emulator._job_images
