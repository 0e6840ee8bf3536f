"""The API's HTTP surface where no earlier test held it: the token is checked before the body is judged, a
bearer opens a result whatever stale signature rides along, a signed result URL lives exactly signed_url_ttl_s,
and an invalid traceparent's trace id is never the job's."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime

import pytest
from service_testkit import API_TOKEN, WEBHOOK_SECRET

from service.signing import result_signature

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _completed_result(svc):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    _status, body, _ = svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))
    assert body["reason"] == "applied"
    return job, image


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'{"workflow_id": "nope", "inputs": {}}',
                                 b'{"workflow_id": "sdxl-txt2img", "inputs": {}, "extra": 1}'])
def test_create_without_the_token_is_a_401_whatever_its_body_says(svc, raw):
    # An anonymous caller learns nothing of the API's validation (workflow ids, field names) before its token.
    status, body, headers = svc.call("POST", "/api/queue/create", raw=raw, token=None)
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert headers["www-authenticate"] == "Bearer"
    assert svc.rows("SELECT COUNT(*) AS n FROM jobs")[0]["n"] == 0


def test_a_result_request_with_the_bearer_token_is_served_even_with_an_expired_signature(svc):
    # A client that stored a result URL and later sends it with its token (a script reusing a status answer)
    _job, image = _completed_result(svc)
    key = image["key"]
    exp = int(svc.clock[0]) + 60
    query = f"exp={exp}&sig={result_signature(WEBHOOK_SECRET, key, exp)}"
    svc.clock[0] += 3600
    assert svc.call("GET", f"/api/result/{key}", token=None, query=query)[0] == 403
    status, data, _ = svc.call("GET", f"/api/result/{key}", token=API_TOKEN, query=query)
    assert status == 200 and data == b"\x89PNG fake image bytes"
    # a wrong token with it is still refused: the bearer check is not skipped, only the stale signature ignored
    status, body, _ = svc.call("GET", f"/api/result/{key}", token="not-the-token-at-all", query=query)
    assert (status, body["error"]["code"]) == (401, "unauthorized")


def test_a_status_result_url_works_for_signed_url_ttl_s_and_then_is_refused(svc):
    job, _image = _completed_result(svc)
    issued = svc.clock[0]
    _status, body, _ = svc.call("GET", f"/api/status/{job['job_id']}")
    [result] = body["results"]
    ttl = svc.app.config.signed_url_ttl_s
    expires = datetime.fromtimestamp(int(issued) + ttl, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert result["url_expires_at"] == expires + ".000Z"
    path, query = result["url"][len("http://api.test"):].split("?")
    assert re.fullmatch(r"exp=\d+&sig=[0-9a-f]{64}", query)
    assert int(query.split("&")[0][4:]) == int(issued) + ttl
    svc.clock[0] = issued + ttl - 1
    assert svc.call("GET", path, token=None, query=query)[0] == 200
    svc.clock[0] = issued + ttl + 1
    status, body, _ = svc.call("GET", path, token=None, query=query)
    assert (status, body["error"]["code"]) == (403, "url_expired_or_invalid")


@pytest.mark.parametrize("header", [
    "00-" + "0" * 32 + "-00f067aa0ba902b7-01",  # an all-zero trace id is invalid
    f"00-{TRACE.upper()}-00f067aa0ba902b7-01",  # upper-case hex is invalid
    f"ff-{TRACE}-00f067aa0ba902b7-01",
])
def test_an_invalid_traceparent_gives_the_job_a_fresh_trace_id_not_the_one_sent(svc, header):
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                              "inputs": {"prompt": "a lighthouse"}},
                               headers={"traceparent": header})
    assert status == 202
    sent = header.split("-")[1]
    assert re.fullmatch(r"[0-9a-f]{32}", body["trace_id"]) and body["trace_id"] not in (sent, sent.lower())
    assert body["trace_id"] != "0" * 32


@pytest.mark.parametrize(("number", "says"), [("1e999", "too large for a JSON number"),
                                              ("-1E400", "too large for a JSON number"),
                                              ("NaN", "is not a JSON number"), ("-Infinity", "is not a JSON number")])
def test_a_number_no_json_reader_could_take_back_is_refused_as_invalid_json_wherever_it_stands(svc, number, says):
    # Beside a field the API would refuse anyway: the body is judged as JSON first, so the client hears what is
    # wrong with it, not a refusal of a field it never meant.
    raw = f'{{"workflow_id": "sdxl-txt2img", "inputs": {{"prompt": "x"}}, "n": {number}}}'.encode()
    status, body, _ = svc.call("POST", "/api/queue/create", raw=raw)
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    assert says in body["error"]["message"]


class _DatabaseThatFails:
    """The database, failing every read with a text that names its internals (a path, a statement)."""

    def __init__(self, db):
        self.db = db

    def __getattr__(self, name):
        return getattr(self.db, name)

    async def query(self, sql, params=()):
        raise sqlite3.OperationalError(f"disk I/O error at /var/lib/goldgate/db.sqlite running {sql[:40]}")


def test_an_unexpected_failure_is_a_fixed_json_500_that_quotes_nothing_of_the_exception(svc, log_lines):
    job = svc.create()
    svc.app.db = _DatabaseThatFails(svc.app.db)
    status, body, headers = svc.call("GET", f"/api/status/{job['job_id']}")
    assert status == 500 and headers["content-type"] == "application/json"
    assert body == {"error": {"code": "internal", "message": "internal error; the service log has the details"}}
    # the operator finds the exception's text in the log line instead
    assert any("disk I/O error" in line for line in log_lines)
