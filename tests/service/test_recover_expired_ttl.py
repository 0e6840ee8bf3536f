"""Recovering a job no RunPod job can settle any more. RunPod deletes a job once the ttl sent with its /run has
passed, queued or running. A job the service wrote but never sent (the process died between its insert and /run),
or one RunPod took whose id was not recorded and has since forgotten, stayed `queued` forever: every recovery was a
409. Once the ttl has passed, a recovery records it failed, saying why; before, the 409 says from when it can.
That failure is a guess: RunPod's own outcome, should it still come, replaces it. Real SQLite, moto S3, a fake RunPod data plane."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import datetime

import pytest
from service_testkit import make_config
from test_recover_unrecorded_runpod_id import _recover, _unrecorded

from service import jobs

TTL_S = make_config().ttl_ms / 1000  # the policy.ttl the service sends with every /run
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _never_sent(svc) -> str:
    """A job the service recorded and never sent to RunPod: the process died between the insert and /run."""
    job = jobs.NewJob(id=uuid.uuid4().hex, stack="test", workflow_id="sdxl-txt2img",
                      workflow_version="sdxl-txt2img@1.0.0", inputs={"prompt": "a lighthouse"},
                      trace_id=uuid.uuid4().hex, created_at_s=svc.clock[0],
                      worker_image_tag=svc.app.config.worker_image_tag)
    svc.run(jobs.insert(svc.db, job))
    return job.id


def _named_time(message: str) -> float:
    """The one time a refusal names: from when the job can be recorded failed."""
    [text] = _TIME.findall(message)
    return datetime.fromisoformat(text).timestamp()


def _refused_until_expiry(svc, job_id: str, code: str, body=None) -> float:
    """Recover within the ttl: a 409 `code` that changes nothing and names a time past the ttl; returns that time."""
    created = svc.clock[0]
    svc.clock[0] = created + TTL_S  # the ttl alone is too soon: /run reaches RunPod after the insert
    status, got, _ = _recover(svc, job_id, body)
    assert status == 409 and got["error"]["code"] == code, got
    when = _named_time(got["error"]["message"])
    assert when > created + TTL_S
    svc.clock[0] = when - 0.001
    assert _recover(svc, job_id, body)[0] == 409
    assert svc.job(job_id)["status"] == "queued"
    assert svc.rows("SELECT * FROM webhook_deliveries WHERE job_id = ?", (job_id,)) == []
    assert svc.rows("SELECT * FROM job_metrics") == []
    return when


def _settled_as_failed_with_nothing_run(svc, job_id: str) -> dict:
    status, view, _ = svc.call("GET", f"/api/status/{job_id}")
    assert status == 200 and view["status"] == "failed"
    assert "ttl" in view["error"] and view["runpod_job_id"] is None
    # nothing ran: no image to blame, no cost, no latency (the time until the recovery is none)
    assert (view["worker_image_tag"], view["cost_estimate_usd"], view["timings"]["e2e_ms"]) == (None, None, None)
    [metrics] = svc.rows("SELECT * FROM job_metrics")
    assert (metrics["job_id"], metrics["status"], metrics["worker_image_tag"], metrics["cost_estimate_usd"],
            metrics["e2e_ms"], metrics["runpod_run_duration_ms"], metrics["images"]) == (
        job_id, "failed", None, None, None, None, 0)
    [delivery] = svc.rows("SELECT * FROM webhook_deliveries WHERE job_id = ?", (job_id,))
    assert (delivery["source"], delivery["applied"], delivery["runpod_status"]) == ("recover", 1, "FAILED")
    return view


def test_a_job_never_sent_to_runpod_is_recorded_failed_once_its_ttl_has_passed(svc):
    job_id = _never_sent(svc)
    svc.clock[0] = _refused_until_expiry(svc, job_id, "not_submitted")
    status, body, _ = _recover(svc, job_id)
    assert (status, body) == (200, {"applied": True, "reason": "applied", "status": "failed", "runpod_status": None})
    view = _settled_as_failed_with_nothing_run(svc, job_id)
    assert "no RunPod id" in view["error"]
    assert svc.fake.status_calls == []  # there is no RunPod id to ask about
    # idempotent: the same recovery again changes and records nothing
    svc.clock[0] += 3600
    assert _recover(svc, job_id)[:2] == (200, {"applied": False, "reason": "duplicate", "status": "failed",
                                                "runpod_status": None})
    assert len(svc.rows("SELECT * FROM webhook_deliveries")) == 1 and len(svc.rows("SELECT * FROM job_metrics")) == 1


def test_a_runpod_id_runpod_has_forgotten_is_recorded_failed_once_the_jobs_ttl_has_passed(svc, log_lines):
    job_id, rid = _unrecorded(svc, log_lines)
    del svc.fake.jobs[rid]  # its ttl ran out at RunPod: the job and its outcome are gone
    when = _refused_until_expiry(svc, job_id, "unknown_runpod_job", {"runpod_job_id": rid})
    svc.clock[0] = when
    status, body, _ = _recover(svc, job_id, {"runpod_job_id": rid})
    assert (status, body["status"], body["applied"]) == (200, "failed", True), body
    view = _settled_as_failed_with_nothing_run(svc, job_id)
    assert rid in view["error"]  # named, not adopted: RunPod could not confirm it is this job's
    assert _recover(svc, job_id, {"runpod_job_id": rid})[1]["reason"] == "duplicate"
    assert len(svc.rows("SELECT * FROM job_metrics")) == 1


def _late_outcome(svc, job_id: str, rid: str, runpod_status: str) -> dict:
    """RunPod's outcome of a job that did run, coming after the job was recorded failed at its deadline."""
    if runpod_status == "COMPLETED":
        return {"id": rid, "status": "COMPLETED", "delayTime": 5, "executionTime": 900,
                "output": {"images": [svc.put_result(job_id)], "gpu_type": "NVIDIA GeForce RTX 4090",
                           "worker_image_tag": "local/worker@sha256:" + "b" * 64}}
    if runpod_status == "TIMED_OUT":
        return {"id": rid, "status": "TIMED_OUT", "delayTime": 5, "executionTime": 900}
    return {"id": rid, "status": "FAILED", "delayTime": 5, "executionTime": 900, "error": "CUDA out of memory"}


def _records_what_ran(svc, job_id: str, rid: str, runpod_status: str, recovered: bool = False) -> None:
    """The job and its one metrics row describe RunPod's outcome: its id, image, GPU, timings and cost; its
    end-to-end time unless an operator's recovery applied it (the time until the recovery is no latency)."""
    job = svc.job(job_id)
    status = {"COMPLETED": "completed", "TIMED_OUT": "timed_out", "FAILED": "failed"}[runpod_status]
    tag = "local/worker@sha256:" + "b" * 64 if status == "completed" else svc.app.config.worker_image_tag
    e2e = None if recovered else int(svc.clock[0] * 1000) - job["created_at_ms"]
    assert (job["status"], job["runpod_job_id"], job["worker_image_tag"], job["gpu_type"], job["e2e_ms"]) == (
        status, rid, tag, "NVIDIA GeForce RTX 4090", e2e)
    if status == "failed":
        assert job["error"] == "CUDA out of memory"
    [metrics] = svc.rows("SELECT * FROM job_metrics")
    assert (metrics["job_id"], metrics["status"], metrics["worker_image_tag"], metrics["gpu_type"],
            metrics["runpod_queue_duration_ms"], metrics["runpod_run_duration_ms"], metrics["e2e_ms"],
            metrics["images"]) == (job_id, status, tag, "NVIDIA GeForce RTX 4090", 5, 900, e2e,
                                   1 if status == "completed" else 0)
    assert metrics["cost_estimate_usd"] == pytest.approx(0.00031)  # one billed second on an RTX 4090


@pytest.mark.parametrize("runpod_status", ["FAILED", "TIMED_OUT", "COMPLETED"])
def test_a_late_runpod_outcome_replaces_a_failure_recorded_at_the_deadline_once(svc, log_lines, runpod_status):
    # RunPod took the job, its id and webhook were lost; RunPod's webhook, retried at the deadline, comes after
    # the recovery that recorded it failed with nothing known to have run: RunPod's word replaces that guess.
    job_id, rid = _unrecorded(svc, log_lines)
    svc.clock[0] = _refused_until_expiry(svc, job_id, "not_submitted")
    assert _recover(svc, job_id)[1]["status"] == "failed"
    late = _late_outcome(svc, job_id, rid, runpod_status)
    status, body, _ = svc.deliver(job_id, late)
    assert (status, body["applied"], body["reason"]) == (200, True, "applied"), body
    _records_what_ran(svc, job_id, rid, runpod_status)
    assert svc.deliver(job_id, late)[1]["reason"] == "duplicate"
    # once: RunPod's own outcome stands like any other (a different one for the same id is a conflict)
    other = {"id": rid, "status": "CANCELLED", "delayTime": 6, "executionTime": 901}
    assert svc.deliver(job_id, other)[1]["reason"] == "terminal_conflict"
    _records_what_ran(svc, job_id, rid, runpod_status)


def test_a_recovery_naming_the_runpod_id_replaces_a_failure_recorded_at_the_deadline(svc, log_lines):
    job_id, rid = _unrecorded(svc, log_lines)
    svc.clock[0] = _refused_until_expiry(svc, job_id, "not_submitted")
    assert _recover(svc, job_id)[1]["status"] == "failed"
    svc.fake.set_status(rid, _late_outcome(svc, job_id, rid, "FAILED"))  # the id, found on its log line
    status, body, _ = _recover(svc, job_id, {"runpod_job_id": rid})
    assert (status, body["applied"], body["status"]) == (200, True, "failed"), body
    _records_what_ran(svc, job_id, rid, "FAILED", recovered=True)
    assert _recover(svc, job_id, {"runpod_job_id": rid})[1]["reason"] == "duplicate"
    assert _recover(svc, job_id)[1]["reason"] == "duplicate"


def test_a_second_failure_without_a_runpod_id_does_not_replace_the_first(svc):
    job_id = _never_sent(svc)
    svc.clock[0] = _refused_until_expiry(svc, job_id, "not_submitted")
    assert _recover(svc, job_id)[1]["status"] == "failed"
    before = svc.job(job_id)
    svc.clock[0] += 3600
    svc.app.config = dataclasses.replace(svc.app.config, ttl_ms=3_600_000)  # another reason text: not a duplicate
    assert _recover(svc, job_id)[1]["reason"] == "terminal_conflict"
    assert svc.job(job_id) == before and len(svc.rows("SELECT * FROM job_metrics")) == 1


def test_a_late_completed_webhook_still_gives_the_client_its_images(svc):
    # RunPod's word beats our inference, as for any failure: the results exist, and the one metrics row says so.
    job_id = _never_sent(svc)
    svc.clock[0] = _refused_until_expiry(svc, job_id, "not_submitted")
    assert _recover(svc, job_id)[1]["status"] == "failed"
    rid = "0f0f0f0f-aaaa-bbbb-cccc-000000000001-u1"
    payload = {"id": rid, "status": "COMPLETED", "delayTime": 5, "executionTime": 900,
               "output": {"images": [svc.put_result(job_id)]}}
    assert svc.deliver(job_id, payload)[1] == {"applied": True, "reason": "applied", "status": "completed"}
    [metrics] = svc.rows("SELECT * FROM job_metrics")
    assert (metrics["status"], metrics["images"]) == ("completed", 1)
    assert svc.job(job_id)["runpod_job_id"] == rid


def test_a_job_failed_when_runpod_refused_it_keeps_that_reason_after_its_ttl(svc):
    svc.fake.run_mode = "refuse"
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                             "inputs": {"prompt": "a lighthouse"}})
    assert status == 502, body
    job_id = body["error"]["job_id"]
    reason = svc.job(job_id)["error"]
    svc.clock[0] += 30 * 86_400
    status, body, _ = _recover(svc, job_id)
    assert (status, body["applied"], body["status"]) == (200, False, "failed"), body
    assert svc.job(job_id)["error"] == reason and "refused" in reason
    assert len(svc.rows("SELECT * FROM job_metrics")) == 1
