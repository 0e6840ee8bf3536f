"""Secrets never reach logs, job input, or answers (every test's log lines are also scanned)."""

from __future__ import annotations

import json

from service_testkit import API_TOKEN, RUNPOD_KEY, S3_SECRET, WEBHOOK_SECRET, check_log_lines

from service.logs import Logger
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


def test_the_last_guard_masks_webhook_signatures_echoed_in_an_error(svc, log_lines):
    job_id = "ab" * 16
    sig = webhook_signature(WEBHOOK_SECRET, job_id)
    url = svc.app.webhook_url(job_id)
    svc.app.log.error("test.leak", message=f"POST {url} refused",
                      error={"type": "HTTPError", "message": f"upstream said: bad url {url.replace(sig, sig.upper())}"})
    line = log_lines[-1]
    assert sig not in line.lower() and "sig=[redacted]" in line
    assert f"job={job_id}" in json.loads(line)["message"]  # the rest of the URL still says which job


def test_the_last_guard_masks_secrets_with_quotes_or_backslashes_and_keeps_the_line_json(log_lines):
    secret, token = 'pa"ss\\word-7f3e9a1c', "tok-NearMissToken-5c1e"
    log = Logger(log_lines.sink, secrets=(secret, token))
    log.info("test.leak", message=f"oops {secret}", data={"echo": [f"k={secret}"]})
    # a tab before "ok-..." is not the token "tok-...", though JSON writes the tab as \t
    log.info("test.near_miss", message="x\t" + token[1:])
    leaked, near = (json.loads(line) for line in log_lines[-2:])
    assert leaked["message"] == "oops [redacted]" and leaked["data"] == {"echo": ["k=[redacted]"]}
    assert near["message"] == "x\t" + token[1:]
    check_log_lines(log_lines[-2:], extra_forbidden=(json.dumps(secret)[1:-1],))


def test_a_secret_where_a_long_field_is_cut_is_masked_whole_not_half_kept(log_lines):
    secret = "sk-live-" + "7" * 24
    log = Logger(log_lines.sink, secrets=(secret,))
    text = "x" * 3990 + secret  # the 4,000-character cut falls inside the secret
    log.error("test.leak", message=text, error={"type": "E", "message": text})
    line = json.loads(log_lines[-1])
    for field in (line["message"], line["error"]["message"]):
        assert "sk-live-" not in field and field.startswith("x" * 3990 + "[redac")
