"""Secrets never reach logs, job input, or answers (every test's log lines are also scanned)."""

from __future__ import annotations

import json

from service_testkit import API_TOKEN, RUNPOD_KEY, S3_SECRET, WEBHOOK_SECRET, check_log_lines

from service.logs import Logger, error_field
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


class _Echoes:
    """A RunPod peer answering with our credentials in its error text, placed where the text is cut."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.body = status, body

    async def request(self, method, url, headers, body, timeout_s):
        from service.ports import HttpReply

        return HttpReply(self.status, self.body)


def test_no_part_of_the_runpod_key_survives_when_an_echoed_error_is_cut_across_it():
    import asyncio

    import pytest

    from service.runpod import HttpRunPodGateway, RunPodRefused

    header = f"Bearer {RUNPOD_KEY}"
    for body in (json.dumps({"error": "x" * 280 + header}).encode(),  # RunPod's detail, cut at 300 characters
                 ("y" * 180 + header).encode()):  # a non-JSON body, cut at 200 bytes
        gateway = HttpRunPodGateway(_Echoes(401, body), "https://rp.test/v2/ep", RUNPOD_KEY)
        with pytest.raises(RunPodRefused) as refused:
            asyncio.run(gateway.run({"input": {}}))
        assert RUNPOD_KEY[:6] not in str(refused.value) and RUNPOD_KEY[:6] not in refused.value.detail
        assert "[redacted]" in str(refused.value)


class _RefusesTheWebhook:
    """A RunPod that refuses /run quoting the webhook URL it was given (with the job's signature)."""

    def __init__(self, inner):
        self.inner = inner

    async def request(self, method, url, headers, body, timeout_s):
        from service.ports import HttpReply

        webhook = json.loads(body)["webhook"]
        return HttpReply(400, json.dumps({"error": f"webhook {webhook} is not reachable from RunPod"}).encode())


def test_a_webhook_url_quoted_in_runpods_refusal_reaches_neither_the_client_nor_the_job(svc, log_lines):
    """The signature in it lets anyone post this job's outcome: it is masked like the RunPod key."""
    svc.app.runpod.transport = _RefusesTheWebhook(svc.app.runpod.transport)
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}})
    assert status == 502 and "is not reachable from RunPod" in body["error"]["message"]
    job_id = body["error"]["job_id"]
    sig = webhook_signature(WEBHOOK_SECRET, job_id)
    _, view, _ = svc.call("GET", f"/api/status/{job_id}")
    assert view["status"] == "failed" and "not reachable" in view["error"]
    assert sig not in json.dumps(body) and sig not in json.dumps(view)


def test_an_exception_text_full_of_secrets_keeps_no_piece_of_one_where_error_field_cut_it(log_lines):
    # error_field cuts an exception's text before the logger masks it: masking shrinks each secret to
    # "[redacted]", so text cut at a fixed length can come out short enough that a secret cut in half at its
    # end is kept, its first part in the line.
    secret = "sk-live-" + "7" * 24  # 32 characters
    text = secret * 240 + "y" * 300 + secret  # the last secret lies across the 8,000th character
    log = Logger(log_lines.sink, secrets=(secret,))
    log.error("test.leak", error=error_field(RuntimeError(text)))
    message = json.loads(log_lines[-1])["error"]["message"]
    assert "sk-live-" not in message
    assert message.startswith("[redacted]" * 240 + "y" * 300)
