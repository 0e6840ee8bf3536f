"""A recovery of a job its webhook already completed: RunPod's /status answer reports the same outcome (its fields
need not match the webhook's byte for byte), so it is `no_change`, logged at info, not a terminal conflict that
sends an operator looking for a second outcome. Real SQLite, moto S3, a fake RunPod data plane."""

from __future__ import annotations

import json

from test_recover_unrecorded_runpod_id import _recover


def test_recovering_a_job_its_webhook_completed_is_no_change_and_no_warning(svc, log_lines):
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    webhook = svc.completed(job_id, [svc.put_result(job_id)])
    assert svc.deliver(job_id, webhook)[1]["reason"] == "applied"
    before, metrics = svc.job(job_id), svc.rows("SELECT * FROM job_metrics")
    # RunPod's /status for the same attempt, as it answers it: other timings than the webhook carried
    svc.fake.set_status(rid, {**webhook, "delayTime": webhook.get("delayTime", 0) + 7})
    log_lines.clear()
    status, body, _ = _recover(svc, job_id)
    assert (status, body["applied"], body["reason"], body["status"]) == (200, False, "no_change", "completed"), body
    assert svc.job(job_id) == before and svc.rows("SELECT * FROM job_metrics") == metrics
    events = [(line["event"], line["level"]) for line in map(json.loads, log_lines) if line["event"].startswith("webhook.")]
    assert events == [("webhook.no_change", "info")], events


def test_a_failure_reported_after_a_completion_is_still_a_terminal_conflict(svc):
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    svc.deliver(job_id, svc.completed(job_id, [svc.put_result(job_id)]))
    late = {"id": rid, "status": "FAILED", "delayTime": 3, "executionTime": 500, "error": "late"}
    assert svc.deliver(job_id, late)[1]["reason"] == "terminal_conflict"
    assert svc.job(job_id)["status"] == "completed"
