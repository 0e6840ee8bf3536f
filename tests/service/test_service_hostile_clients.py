"""The public API as an attacker on the internet sees it: what a browser is told about each answer, what a
result object may be served as, and what an unsigned caller can make the service read or log."""

from __future__ import annotations

import json

import pytest
from service_testkit import WEBHOOK_SECRET

from service.app import webhook_body_limit
from service.asgi import AsgiService
from service.http import ApiError
from service.results import ResultRejected, parse_images, parse_result_key
from service.signing import result_signature, webhook_signature


def test_every_json_answer_tells_browsers_not_to_sniff_it(svc):
    """Error bodies quote what the caller sent (a workflow id, a field name): a browser must never sniff one
    into HTML."""
    job = svc.create()
    answers = [
        svc.call("GET", "/healthz", token=None),
        svc.call("GET", f"/api/status/{job['job_id']}"),
        svc.call("GET", "/api/status/" + "0" * 32, token=None),
        svc.call("GET", "/<script>alert(1)</script>"),
        svc.call("OPTIONS", "/api/queue/create"),
        svc.call("POST", "/api/queue/create", {"workflow_id": "<svg onload=alert(1)>", "inputs": {}}),
        svc.call("POST", "/api/runpod/webhook", {"id": "x", "status": "FAILED"}, token=None, query="job=x&sig=y"),
    ]
    for status, body, headers in answers:
        assert headers["content-type"] == "application/json", (status, body)
        assert headers["x-content-type-options"] == "nosniff", (status, body)


@pytest.mark.parametrize("content_type", ["text/html", "image/svg+xml", "application/xhtml+xml", "text/plain"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_result_object_stored_as_anything_but_an_allowed_image_is_a_download_never_rendered(svc, content_type,
                                                                                              method):
    """Anything under results/ (a failed job's stray upload, an object rewritten in the bucket) is served from
    the API's own origin: as text/html or SVG it would run script there."""
    job = svc.create()
    page = svc.put_result(job["job_id"], "page.png", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
                          content_type)
    exp = int(svc.clock[0]) + 60
    for token, query in ((None, f"exp={exp}&sig={result_signature(WEBHOOK_SECRET, page['key'], exp)}"),
                         ("bearer", "")):
        status, _, headers = svc.call(method, f"/api/result/{page['key']}", query=query,
                                      **({"token": None} if token is None else {}))
        assert status == 200
        assert headers["content-type"] == "application/octet-stream"
        assert headers["content-disposition"] == 'attachment; filename="page.png"'
        assert headers["x-content-type-options"] == "nosniff"


def test_a_result_image_is_served_inline_as_its_plain_stored_type(svc):
    job = svc.create()
    image = svc.put_result(job["job_id"], "0.webp", b"RIFF fake webp", "IMAGE/WebP; charset=binary")
    status, data, headers = svc.call("GET", f"/api/result/{image['key']}")
    assert (status, data) == (200, b"RIFF fake webp")
    assert headers["content-type"] == "image/webp"
    assert headers["content-disposition"] == 'inline; filename="0.webp"'


def test_a_result_key_with_a_trailing_newline_is_no_result_key(svc):
    """`$` also matches before a final newline: `0.png\\n` must not pass as a second name for `0.png`."""
    job_id = "a" * 32
    with pytest.raises(ApiError) as refused:
        parse_result_key(f"results/{job_id}/0.png%0A")
    assert refused.value.status == 404
    image = {"key": f"results/{job_id}/0.png\n", "content_type": "image/png", "bytes": 3}
    with pytest.raises(ResultRejected, match="is not a result key under"):
        parse_images(job_id, {"images": [image]})
    status, body, _ = svc.call("GET", f"/api/result/results/{job_id}/0.png%0A")
    assert status == 404 and body["error"]["message"].startswith("no such result; keys look like")


def test_an_unsigned_webhook_is_refused_before_its_body_is_read_past_the_clients_limit(svc, log_lines):
    """The webhook's large body limit is for RunPod's signed deliveries: anyone else gets the client's limit,
    and no error line telling the operator to recover a job."""
    job = svc.create()
    log_lines.clear()
    status, body, _ = svc.call("POST", "/api/runpod/webhook", raw=b" " * (webhook_body_limit(65_536) + 1), token=None,
                               query=f"job={job['job_id']}&sig={'0' * 64}")
    assert status == 401 and body["error"]["code"] == "bad_signature"
    lines = [json.loads(line) for line in log_lines]
    assert [(line["level"], line["event"]) for line in lines] == [("warning", "webhook.bad_signature")], lines
    assert svc.job(job["job_id"])["status"] == "queued"
    assert svc.app.body_limit("/api/runpod/webhook", f"job={job['job_id']}&sig={'0' * 64}") == 65_536
    assert svc.app.body_limit("/api/runpod/webhook", "") == 65_536
    signed = f"job={job['job_id']}&sig={webhook_signature(WEBHOOK_SECRET, job['job_id'])}"
    assert svc.app.body_limit("/api/runpod/webhook", signed) > 65_536


def test_the_local_server_stops_reading_an_unsigned_webhook_past_the_clients_limit(svc):
    """Before, any caller could make the service buffer a webhook's whole multi-megabyte allowance."""
    job = svc.create()
    chunk = b" " * 65_536
    received: list[int] = []
    sent: list[dict] = []

    async def receive() -> dict:
        received.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": len(received) < 16}  # 1 MiB: within the webhook limit

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/runpod/webhook", "raw_path": b"/api/runpod/webhook",
             "query_string": f"job={job['job_id']}&sig={'0' * 64}".encode(), "headers": []}
    svc.run(AsgiService(svc.app)(scope, receive, send))
    assert sent[0]["status"] == 401 and (b"connection", b"close") in sent[0]["headers"]
    assert sum(received) <= 2 * len(chunk)
