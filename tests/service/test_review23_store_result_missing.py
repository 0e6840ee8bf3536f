"""A result its job recorded that the store no longer holds (expired, or deleted or damaged in the bucket: the
local store drops an object whose body file went) is answered as such: 404 `result_missing`, naming the key
and the job, and one `result.missing` line. It was the same 404 `not_found` as a key no job ever had, saying
only that results expire: an operator whose result vanished a day after the job had nothing to go on."""

from __future__ import annotations

import json
import uuid
from typing import Any

from service_testkit import BUCKET


def _completed_with_two_results(svc: Any) -> tuple[str, str, str]:
    job_id = svc.create()["job_id"]
    images = [svc.put_result(job_id, "0.png"), svc.put_result(job_id, "1.png")]
    status, body, _ = svc.deliver(job_id, svc.completed(job_id, images))
    assert status == 200 and body["status"] == "completed", body
    return job_id, images[0]["key"], images[1]["key"]


def test_a_recorded_result_the_store_no_longer_holds_is_404_result_missing_naming_key_and_job(svc, log_lines):
    job_id, gone, kept = _completed_with_two_results(svc)
    svc.s3.delete_object(Bucket=BUCKET, Key=gone)  # the bucket lost it (the local store, a body file deleted)
    del log_lines[:]

    status, body, headers = svc.call("GET", f"/api/result/{gone}")

    assert status == 404, body
    assert headers["content-type"] == "application/json"
    assert body["error"]["code"] == "result_missing", body
    message = body["error"]["message"]
    assert gone in message and job_id in message and "run the job again" in message, message
    (line,) = [json.loads(raw) for raw in log_lines]  # one line for the request, named by the event
    assert (line["event"], line["level"], line["reason"]) == ("result.missing", "warning", "result_missing")
    assert line["job_id"] == job_id and line["data"]["key"] == gone and line["http"]["status"] == 404

    status, _, _ = svc.call("HEAD", f"/api/result/{gone}")  # a HEAD asks the store's HEAD: the same answer
    assert status == 404
    status, body, _ = svc.call("GET", f"/api/result/{gone}", headers={"if-none-match": '"abc"'})
    assert status == 404 and body["error"]["code"] == "result_missing"

    status, content, _ = svc.call("GET", f"/api/result/{kept}")  # the job's other result is served as before
    assert status == 200 and content == b"\x89PNG fake image bytes"
    status, view, _ = svc.call("GET", f"/api/status/{job_id}")  # and the job keeps its record
    assert status == 200 and view["status"] == "completed" and len(view["results"]) == 2


def test_a_key_no_job_recorded_is_still_plain_not_found(svc, log_lines):
    job_id, _, _ = _completed_with_two_results(svc)
    del log_lines[:]

    # A file the job lacks; a job that never was (the session's store is shared: an id no other test uses).
    # The job that lacks it says so (review 26: not "deleted after result_ttl_days" for a job a minute old); a key
    # with no job row still points at the expiry (the row may have been pruned).
    for key, said in ((f"results/{job_id}/7.png", f"job {job_id} recorded no such result"),
                      (f"results/{uuid.uuid4().hex}/0.png", "result_ttl_days")):
        status, body, _ = svc.call("GET", f"/api/result/{key}")
        assert status == 404 and body["error"]["code"] == "not_found", body
        assert said in body["error"]["message"]
    assert [json.loads(raw)["event"] for raw in log_lines] == ["http.request", "http.request"]
