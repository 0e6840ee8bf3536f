"""A request's one log line is named by the specific error event its handler logged (what docs/LOG_EVENTS.md
tells an operator to alert on), and only a failure no handler described is `http.refused` / `http.unhandled`."""

from __future__ import annotations

import json
import sqlite3

import pytest

from service.s3_store import S3ResultStore

CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}
DOWN = "http://127.0.0.1:9"  # nothing listens there


def _line(log_lines) -> dict:
    [line] = [json.loads(line) for line in log_lines]
    return line


class _Failing:
    """The database, failing every read (D1 can fail a call)."""

    def __init__(self, db):
        self.db = db

    def __getattr__(self, name):
        return getattr(self.db, name)

    async def query(self, sql, params=()):
        raise sqlite3.OperationalError("D1_ERROR: Network connection lost.")

    async def read_many(self, statements):
        raise sqlite3.OperationalError("D1_ERROR: Network connection lost.")


class _BrokenGateway:
    """A RunPod gateway with a bug: it raises what it should never raise."""

    async def run(self, body):
        raise RuntimeError("gateway bug: no answer parsed")


@pytest.mark.parametrize(("mode", "status", "reason"), [("refuse", 502, "runpod_refused"),
                                                        ("error", 503, "runpod_unavailable")])
def test_a_create_runpod_did_not_take_is_logged_as_job_submit_failed(svc, log_lines, mode, status, reason):
    svc.fake.run_mode = mode
    got, body, _ = svc.call("POST", "/api/queue/create", CREATE)
    assert got == status
    line = _line(log_lines)
    assert (line["event"], line["level"], line["reason"]) == ("job.submit_failed", "error", reason)
    assert line["job_id"] == body["error"]["job_id"] and line["http"]["status"] == status


def test_a_create_whose_submission_raised_a_bug_is_logged_as_job_submit_failed_with_the_exception(svc, log_lines):
    svc.app.runpod = _BrokenGateway()
    got, body, _ = svc.call("POST", "/api/queue/create", CREATE)
    assert (got, body["error"]["code"]) == (500, "internal")
    line = _line(log_lines)
    assert (line["event"], line["level"]) == ("job.submit_failed", "error")
    assert line["error"] == {"type": "RuntimeError", "message": "gateway bug: no answer parsed"}


def test_a_result_the_store_cannot_serve_is_logged_as_result_refused(svc, log_lines):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    svc.app.store = S3ResultStore.connect(DOWN, "b", "k", "s")
    log_lines.clear()
    assert svc.call("GET", f"/api/result/{image['key']}")[0] == 503
    line = _line(log_lines)
    assert (line["event"], line["reason"], line["job_id"]) == ("result.refused", "store_unavailable", job["job_id"])


def test_a_webhook_answered_503_is_logged_as_webhook_refused(svc, log_lines):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    svc.app.transitions.store = S3ResultStore.connect(DOWN, "b", "k", "s")
    log_lines.clear()
    assert svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))[0] == 503
    line = _line(log_lines)
    assert (line["event"], line["reason"], line["job_id"]) == ("webhook.refused", "store_unavailable", job["job_id"])


def test_a_refusal_no_handler_describes_is_still_http_refused(svc, log_lines):
    svc.app.db = _Failing(svc.app.db)
    assert svc.call("GET", "/healthz", token=None)[0] == 503
    line = _line(log_lines)
    assert (line["event"], line["level"], line["reason"]) == ("http.refused", "error", "database_unavailable")


def test_an_exception_no_handler_describes_is_still_http_unhandled(svc, log_lines):
    svc.app.db = _Failing(svc.app.db)
    assert svc.call("GET", "/api/metrics")[0] == 500
    line = _line(log_lines)
    assert (line["event"], line["level"]) == ("http.unhandled", "error")
    assert line["error"] == {"type": "OperationalError", "message": "D1_ERROR: Network connection lost."}
