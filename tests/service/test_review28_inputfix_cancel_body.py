"""`POST /api/cancel/<job_id>` takes no body. Before, it ignored whatever came: `{"reason": "oops", this is not
json` answered 200 and RunPod's /cancel was called, while the recovery route refuses a body it does not take. Now a
body other than none, `{}` or `null` is refused with 400 (invalid_json: not JSON; invalid_body: JSON that asks for
something) before the job is read or RunPod called, and the job is left as it was."""

from __future__ import annotations

import pytest
from test_review17_cancel_route import _unchanged, fake_runpod  # noqa: F401 -- the fake plane with /cancel

UNKNOWN_JOB = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("raw", "code"), [
    (b'{"reason": "oops", this is not json', "invalid_json"),
    (b"\xff\xfe not text", "invalid_json"),
    (b" ", "invalid_json"),
    (b'{"reason": "oops"}', "invalid_body"),
    (b'{"job_id": "' + b"f" * 32 + b'"}', "invalid_body"),
    (b"[]", "invalid_body"),
    (b"0", "invalid_body"),
    (b"false", "invalid_body"),
    (b'""', "invalid_body"),
], ids=["broken-json", "not-utf8", "blank", "a-reason", "another-job", "a-list", "zero", "false", "empty-string"])
def test_a_body_is_refused_before_runpod_is_called_and_the_job_is_unchanged(svc, raw, code):
    job_id = svc.create()["job_id"]
    svc.clock[0] += 4
    before = svc.job(job_id)
    status, body, _ = svc.call("POST", f"/api/cancel/{job_id}", raw=raw)
    assert (status, body["error"]["code"]) == (400, code), body
    assert "send the request without one" in body["error"]["message"] or code == "invalid_json", body
    assert svc.fake.cancel_calls == []
    _unchanged(svc, job_id, before)
    # the same request without the body cancels it
    status, body, _ = svc.call("POST", f"/api/cancel/{job_id}")
    assert (status, body["cancelled"]) == (200, True), body


@pytest.mark.parametrize("raw", [b"", b"{}", b"null", b" { } \n", b"\nnull"], ids=["none", "{}", "null", "{}-spaced",
                                                                                   "null-spaced"])
def test_no_body_or_one_that_says_nothing_cancels_the_job(svc, raw):
    job_id = svc.create()["job_id"]
    svc.clock[0] += 4
    status, body, _ = svc.call("POST", f"/api/cancel/{job_id}", raw=raw)
    assert (status, body["cancelled"], body["status"]) == (200, True, "cancelled"), body
    assert svc.fake.cancel_calls == [svc.runpod_id(job_id)]


def test_an_unknown_job_with_a_body_is_answered_for_the_body(svc):
    status, body, _ = svc.call("POST", f"/api/cancel/{UNKNOWN_JOB}", raw=b'{"reason": "oops"}')
    assert (status, body["error"]["code"]) == (400, "invalid_body"), body
    status, body, _ = svc.call("POST", f"/api/cancel/{UNKNOWN_JOB}")
    assert (status, body["error"]["code"]) == (404, "unknown_job"), body
