"""RunPod failed a create's /run, and then the database was too full to mark the job failed. The App answered
its generic 503 `storage_full`: `Retry-After: 60` and "could not be recorded; retry it later", both false there
(the job was recorded, as queued) and, when RunPod may have taken the job (no answer, a 5xx), an invitation to
send it again and be billed twice. Now the answer is RunPod's own, as when the job is marked (no Retry-After
while RunPod may have the job), saying the job could not be marked failed; the request's one line stays
`job.submit_failed`, with the database's error in `data.not_marked_failed`."""

from __future__ import annotations

import json

import pytest
from service_testkit import Harness
from test_review18_full_database import CREATE, fill


@pytest.mark.parametrize(("mode", "status", "code", "retry_after"), [
    ("refuse", 502, "runpod_refused", None),        # RunPod said no: it has not the job
    ("error", 503, "runpod_unavailable", None),     # a 5xx: RunPod may have the job, so no Retry-After
])
def test_a_create_runpod_failed_on_a_full_database_is_answered_as_runpods_failure(
        svc: Harness, log_lines, mode: str, status: int, code: str, retry_after: str | None) -> None:
    svc.fake.run_mode = mode
    svc.fake.on_run = lambda: fill(svc)  # the job row was written; the disk fills before RunPod answers
    got, body, headers = svc.call("POST", "/api/queue/create", CREATE)
    assert (got, body["error"]["code"]) == (status, code), body
    assert headers.get("retry-after") == retry_after, headers
    message = body["error"]["message"]
    assert "could not be marked failed" in message and "database is full" in message, message
    assert "retry it later" not in message
    [job] = svc.rows("SELECT id, status FROM jobs")
    assert job["status"] == "queued" and body["error"]["job_id"] == job["id"]
    lines = [json.loads(line) for line in log_lines]
    [failed] = [line for line in lines if line["event"] == "job.submit_failed"]
    assert failed["status"] == "queued" and failed["job_id"] == job["id"], failed
    assert "database or disk is full" in failed["data"]["not_marked_failed"]["message"], failed
