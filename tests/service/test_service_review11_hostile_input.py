"""Hostile input on every route: each answer is the JSON error shape with its status, nothing in the database
changes, and no line logs a secret (the kit's autouse `log_lines` checks every line for secrets and the schema)."""

from __future__ import annotations

import http.client
import json
import sqlite3

import pytest
from service_testkit import API_TOKEN, WEBHOOK_SECRET

from service.signing import webhook_signature


def _lines(log_lines, event):
    return [line for line in map(json.loads, log_lines) if line["event"] == event]


def test_a_webhook_whose_job_id_ends_in_an_encoded_newline_names_no_job_in_its_refusal(svc, log_lines):
    """`$` also matched before a final newline: `job=<id>%0A` passed as a job id, and the refusal's log line named
    a job id with a newline in it, one no job has (and a grep for the job finds it)."""
    job = svc.create()["job_id"]
    log_lines.clear()
    sig = webhook_signature(WEBHOOK_SECRET, job)
    status, body, _ = svc.call("POST", "/api/runpod/webhook", {"id": svc.runpod_id(job), "status": "FAILED"},
                               token=None, query=f"job={job}%0A&sig={sig}")
    assert status == 401 and body["error"]["code"] == "bad_signature"
    [line] = _lines(log_lines, "webhook.bad_signature")
    assert line["job_id"] is None, line
    assert svc.job(job)["status"] == "queued"
    assert svc.app.body_limit("/api/runpod/webhook", f"job={job}%0A&sig={sig}") == svc.app.max_body_bytes


@pytest.mark.parametrize("declared", ["\u00b2", "\u0663", "9" * 5000])
def test_a_content_length_of_other_digits_or_beyond_int_is_no_internal_error(svc, log_lines, declared):
    """str.isdigit() takes '²', which int() refuses, and int() refuses more than 4,300 digits: each was a 500
    (`http.unhandled`). Only ASCII digits are a length ('٣' is none either), and one longer than int() reads is
    over any limit."""
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "p"}},
                               headers={"content-length": declared})
    assert status == (413 if declared.isascii() else 202), body
    assert not _lines(log_lines, "http.unhandled")


def test_the_worker_refuses_a_content_length_beyond_int_with_413_without_reading_the_body(svc):
    from service.cloudflare_entry import to_core_request

    class Upload:
        def __init__(self) -> None:
            self.method, self.url, self.body = "POST", "https://api.example/api/queue/create", None
            self.headers = {"content-length": "9" * 5000}

    core = svc.run(to_core_request(Upload(), svc.app.body_limit))
    assert svc.run(svc.app.handle(core)).status == 413


JOB = "c" * 32


def _routes(job: str) -> list[tuple[str, str]]:
    return [("GET", "/healthz"), ("GET", "/api/workflows"), ("POST", "/api/queue/create"),
            ("POST", "/api/runpod/webhook"), ("GET", f"/api/status/{job}"), ("GET", f"/api/result/results/{job}/0.png"),
            ("POST", f"/api/admin/recover/{job}"), ("GET", "/api/metrics")]


@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "DELETE", "PATCH", "TRACE", "get", "X" * 100])
def test_an_unusual_method_on_each_route_is_a_405_naming_the_allowed_ones(svc, method):
    job = svc.create()["job_id"]
    before = svc.rows("SELECT * FROM jobs")
    for route_method, path in _routes(job):
        status, body, headers = svc.call(method, path)
        allowed = "GET, HEAD" if route_method == "GET" else "POST"
        assert (status, headers["allow"], body["error"]["code"]) == (405, allowed, "method_not_allowed"), path
        assert body["error"]["message"].startswith(f"{method[:16]} is not allowed here"), path
    assert svc.rows("SELECT * FROM jobs") == before


def test_head_on_a_post_route_is_405_and_on_a_get_route_is_get_without_a_body(svc):
    job = svc.create()["job_id"]
    for route_method, path in _routes(job):
        status, body, headers = svc.call("HEAD", path)
        assert body == b"", path
        if route_method == "POST":
            assert (status, headers["allow"]) == (405, "POST"), path
        else:
            assert status == svc.call("GET", path)[0], path
            assert headers["content-type"] in ("application/json", "image/png"), path


@pytest.mark.parametrize("authorization", [f"Basic {API_TOKEN}", f"Bearer{API_TOKEN}", f"Bearer\t{API_TOKEN}",
                                           f"Bearer {API_TOKEN}, Bearer {API_TOKEN}", f"Bearer {API_TOKEN}x",
                                           f"Bearer {API_TOKEN[:-1]}", "Bearer", "Bearer ", f"Token {API_TOKEN}",
                                           f"Bearer {API_TOKEN}\x00", "Bearer " + "\xe9" * 64])
def test_an_authorization_that_is_not_one_bearer_api_token_is_refused_on_every_bearer_route(svc, authorization):
    job = svc.create()["job_id"]
    before = svc.rows("SELECT * FROM jobs")
    for method, path in _routes(job):
        if path in ("/healthz", "/api/runpod/webhook"):
            continue
        raw = json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "p"}}).encode()
        status, body, headers = svc.call(method, path, raw=raw if path == "/api/queue/create" else b"", token=None,
                                         headers={"authorization": authorization})
        assert (status, body["error"]["code"], headers["www-authenticate"]) == (401, "unauthorized", "Bearer"), path
    assert svc.rows("SELECT * FROM jobs") == before


@pytest.mark.parametrize("authorization", [f"bearer {API_TOKEN}", f"BEARER {API_TOKEN}", f"Bearer  {API_TOKEN}",
                                           f"Bearer {API_TOKEN} "])
def test_the_bearer_scheme_in_any_case_and_spaces_around_the_token_are_accepted(svc, authorization):
    """RFC 9110 11.1: the scheme is case-insensitive; 11.4: one or more spaces before the credentials."""
    status, _, _ = svc.call("GET", "/api/workflows", token=None, headers={"authorization": authorization})
    assert status == 200


@pytest.mark.parametrize("job_id", ["C" * 32, "c" * 31, "c" * 33, "c" * 200, "\uff43" * 32, "c" * 31 + "\u0441",
                                    "%63" * 32, "c" * 32 + "%0A", "c" * 32 + "%00", "\u0663" * 32, "0x" + "c" * 30])
def test_a_job_id_that_is_not_32_lowercase_ascii_hex_is_404_unknown_job_on_status_and_recover(svc, job_id):
    """Upper case, short, long, full-width and Cyrillic look-alikes, encoded hex, an encoded newline or NUL."""
    svc.create()
    before = svc.rows("SELECT * FROM jobs")
    for method in ("GET", "POST"):
        path = f"/api/status/{job_id}" if method == "GET" else f"/api/admin/recover/{job_id}"
        status, body, _ = svc.call(method, path)
        assert (status, body["error"]["code"]) == (404, "unknown_job"), (path, body)
    assert svc.rows("SELECT * FROM jobs") == before
    status, body, _ = svc.call("GET", "/api/status/" + "c" * 201)  # past the route's 200 characters
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_repeated_query_parameters_are_read_by_their_first_value_only(svc):
    """A second `job` or `sig` cannot steer a signed webhook to another job, nor a bad first `sig` be rescued by a
    good second one."""
    job, other = svc.create()["job_id"], svc.create()["job_id"]
    sig, other_sig = webhook_signature(WEBHOOK_SECRET, job), webhook_signature(WEBHOOK_SECRET, other)
    failed = {"id": svc.runpod_id(other), "status": "FAILED", "error": "boom"}
    answers = [svc.call("POST", "/api/runpod/webhook", failed, token=None, query=query)[:2] for query in (
        f"job={job}&job={other}&sig={other_sig}", f"job={other}&sig={'0' * 64}&sig={other_sig}",
        f"job={job}&sig={sig}&job={other}")]
    assert [(status, body.get("error", {}).get("code") or body["reason"]) for status, body in answers] == [
        (401, "bad_signature"), (401, "bad_signature"), (200, "runpod_id_mismatch")]  # the last: job's, not other's
    assert svc.job(job)["status"] == svc.job(other)["status"] == "queued"


@pytest.mark.parametrize("since", ["%00", "%FF", "%20", "x" * 100_000, "2026-01-01T00:00:00%2B99:00", "2026-13-01",
                                   "0001-01-01T00:00:00%2B01:00", "9999-12-31T23:59:59-01:00", "1e9", "-2026-01-01",
                                   "%EF%BC%92026-01-01", "2026-01-01T24:00:00Z", "T", "%E2%80%AE2026-01-01"])
def test_a_since_that_is_no_iso_8601_time_in_range_is_a_400_naming_the_field(svc, since):
    status, body, _ = svc.call("GET", "/api/metrics", query=f"since={since}")
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "invalid_since", "since"), body
    assert len(body["error"]["message"]) < 300


@pytest.mark.parametrize("since", ["2026-01-01", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00 00:00",
                                   "2026-01-01T00:00:00.0000001Z", "9999-12-31T23:59:59.9999999Z", ""])
def test_a_since_in_any_iso_8601_form_is_answered(svc, since):
    status, body, _ = svc.call("GET", "/api/metrics", query=f"since={since}")
    assert status == 200, body


def test_a_repeated_since_is_refused_naming_the_field(svc):
    # answering for the first value hid that the second was ignored (test_review29_svc2_metrics_since.py)
    status, body, _ = svc.call("GET", "/api/metrics", query="since=2026-01-01&since=nonsense")
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "invalid_query", "since"), body


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/json; charset=latin-1", "image/png"])
def test_a_content_type_that_lies_changes_nothing_the_body_is_read_as_the_json_it_must_be(svc, content_type):
    before = svc.rows("SELECT * FROM jobs")
    for raw in (b"workflow_id=sdxl-txt2img&inputs=x", b"\xff\xfe{}", b"--b\r\n\r\n--b--"):
        status, body, _ = svc.call("POST", "/api/queue/create", raw=raw, headers={"content-type": content_type})
        assert (status, body["error"]["code"]) == (400, "invalid_json"), (content_type, raw)
    assert svc.rows("SELECT * FROM jobs") == before


def test_nul_and_control_characters_in_headers_are_refused_or_ignored_never_an_internal_error(svc, log_lines):
    job = svc.create()["job_id"]
    for name, value in (("idempotency-key", "a\x00b"), ("traceparent", "00-\x00"), ("if-none-match", '"\x00"'),
                        ("content-length", "1\x00"), ("idempotency-key", "\xff" * 300)):
        for method, path in _routes(job):
            status, body, _ = svc.call(method, path, headers={name: value})
            assert status < 500, (name, path, body)
    assert not _lines(log_lines, "http.unhandled")


@pytest.fixture(scope="module")
def local_server(shared_local_server):
    """One server for both over-HTTP tests: neither creates a job, each reads only its own answer."""
    return shared_local_server


def test_over_http_a_chunked_create_over_the_limit_is_a_413_and_records_no_job(local_server):
    """A chunked upload has no Content-Length to refuse up front: the server stops reading just past the limit."""
    conn = http.client.HTTPConnection("127.0.0.1", local_server.port, timeout=10)
    conn.putrequest("POST", "/api/queue/create", skip_accept_encoding=True)
    conn.putheader("authorization", f"Bearer {API_TOKEN}")
    conn.putheader("transfer-encoding", "chunked")
    conn.endheaders()
    try:
        for _ in range(64):  # 4 MiB in 64 KiB chunks; the server may answer and close long before the end
            conn.send(b"10000\r\n" + b" " * 0x10000 + b"\r\n")
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    reply = conn.getresponse()
    body = json.loads(reply.read())
    conn.close()
    assert (reply.status, body["error"]["code"]) == (413, "body_too_large")
    db = sqlite3.connect(local_server.db_path)
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    db.close()


def test_over_http_a_get_with_a_chunked_body_over_the_limit_is_answered_as_the_worker_answers_it(local_server, svc):
    """The Worker entry gives the core no body for a GET (`to_core_request`), so a GET carrying one is answered as
    if it had none there; the local server read it and answered 413. Both now answer the GET."""
    conn = http.client.HTTPConnection("127.0.0.1", local_server.port, timeout=10)
    conn.putrequest("GET", "/api/workflows", skip_accept_encoding=True)
    conn.putheader("authorization", f"Bearer {API_TOKEN}")
    conn.putheader("transfer-encoding", "chunked")
    conn.endheaders()
    try:
        for _ in range(64):
            conn.send(b"10000\r\n" + b" " * 0x10000 + b"\r\n")
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    reply = conn.getresponse()
    local = (reply.status, [w["id"] for w in json.loads(reply.read())["workflows"]])
    conn.close()

    from service.cloudflare_entry import to_core_request

    class ChunkedGet:
        def __init__(self) -> None:
            self.method, self.url, self.body = "GET", "https://api.example/api/workflows", None
            self.headers = {"authorization": f"Bearer {API_TOKEN}", "transfer-encoding": "chunked"}

    worker = svc.run(svc.app.handle(svc.run(to_core_request(ChunkedGet(), svc.app.body_limit))))
    assert local == (worker.status, [w["id"] for w in json.loads(worker.body)["workflows"]])
    assert local[0] == 200


def test_a_content_length_with_leading_zeros_is_its_number() -> None:
    from service.http import declares_over

    # 1*DIGIT allows leading zeros: 22 digits of which the last is 5 declare five bytes, not more than any limit
    assert not declares_over("0" * 21 + "5", 1000)
    assert declares_over("0" * 21 + "1001", 1000) and declares_over("9" * 19, 10**18)
