"""Secrets never reach logs, job input, or answers (every test's log lines are also scanned)."""

from __future__ import annotations

import json

from service_testkit import API_TOKEN, RUNPOD_KEY, S3_SECRET, WEBHOOK_SECRET, check_log_lines

from service.signing import webhook_signature


def test_no_secret_or_signature_appears_in_logs_input_or_answers(svc, log_lines):
    svc.fake.run_mode = "echo"
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}})
    assert status == 502
    svc.fake.run_mode = "accept"
    job = svc.create()
    sig = webhook_signature(WEBHOOK_SECRET, job["job_id"])
    svc.deliver(job["job_id"], {"id": svc.runpod_id(job["job_id"]), "status": "FAILED", "error": "boom"})
    svc.deliver(job["job_id"], {"id": "x", "status": "FAILED"}, sig="0" * 64)
    svc.call("GET", "/api/workflows", token="Bearer-wrong-" + API_TOKEN[::-1])
    answers = json.dumps(body) + json.dumps(svc.rows("SELECT * FROM jobs")) + json.dumps(svc.fake.runs)
    everything = "\n".join(log_lines) + answers
    for secret in (API_TOKEN, WEBHOOK_SECRET, RUNPOD_KEY, S3_SECRET):
        assert secret not in everything
    assert sig not in "\n".join(log_lines) and sig not in json.dumps([r["input"] for r in svc.fake.runs])
    assert len(log_lines) == 5  # one line per request
    check_log_lines(list(log_lines), extra_forbidden=(sig,))


def test_the_last_guard_masks_a_secret_that_slips_into_free_text(svc, log_lines):
    svc.app.log.info("test.leak", message=f"oops {RUNPOD_KEY} and {API_TOKEN}")
    assert "[redacted]" in log_lines[-1] and RUNPOD_KEY not in log_lines[-1]
