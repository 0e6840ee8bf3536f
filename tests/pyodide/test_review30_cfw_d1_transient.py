"""D1 errors that pass, on the Worker, beyond the three test_review24_d1_transient covers. Cloudflare's "Debug D1"
page (List of D1_ERRORs) also says "Retry the operation" for "Cannot resolve D1 DB due to transient issue on remote
node.", and "send fewer requests by spreading the load over time" for an overloaded database ("D1 DB is
overloaded. ...": the request was queued, never run) and for "D1 DB storage operation exceeded timeout which caused
object to be reset." (the reset rejects every request pending on the object). Before, each was a 500 `internal`:
the client was told of a bug, with no word to retry or back off, and /healthz stayed 200. Now each is a 503
`database_busy` with `Retry-After: 5`.

CPython, over the Worker entry with tests/service's D1 stand-in (this folder's conftest puts tests/service on
sys.path); the binding throws as a JS Error does under Pyodide (`JsException`)."""

from __future__ import annotations

from typing import Any

import pytest
from service_testkit import API_TOKEN, fake_runpod
from test_review18_full_d1 import CREATE, AtItsSizeLimit, Worker, _lines
from test_service_cloudflare_entry import _entry, make_env

__all__ = ["fake_runpod"]

AUTH = {"authorization": f"Bearer {API_TOKEN}"}
PASSING = ["D1_ERROR: Cannot resolve D1 DB due to transient issue on remote node.",
           "D1_ERROR: D1 DB is overloaded. Requests queued for too long.",
           "D1_ERROR: D1 DB is overloaded. Too many requests queued.",
           "D1_ERROR: D1 DB storage operation exceeded timeout which caused object to be reset."]


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Any:
    yield from _entry(monkeypatch, with_jsnull=True)


@pytest.mark.parametrize("error", PASSING)
def test_a_create_d1_cannot_take_for_now_is_a_503_to_retry_and_healthz_says_so(entry, tmp_path, fake_runpod,
                                                                             capsys, log_lines, error):
    env = make_env(tmp_path, fake_runpod.base)
    d1 = env.DB
    env.DB = AtItsSizeLimit(d1, error)
    worker = Worker(entry, env)
    status, body, headers = worker.call("POST", "/api/queue/create", CREATE, AUTH)
    assert (status, body["error"]["code"]) == (503, "database_busy"), body
    assert "retry it shortly" in body["error"]["message"] and headers["retry-after"] == "5"
    assert fake_runpod.runs == [], "RunPod ran a job D1 did not record"
    [line] = [line for line in _lines(capsys, log_lines) if line["event"] == "database.busy"]
    assert error in line["error"]["message"], line

    status, body, _ = worker.call("GET", "/healthz")
    assert (status, body["error"]["code"]) == (503, "database_unavailable"), body

    env.DB = d1  # D1 back: the client's retry is taken
    worker = Worker(entry, env)
    assert worker.call("POST", "/api/queue/create", CREATE, AUTH)[0] == 202
    _lines(capsys, log_lines)


def test_a_webhook_while_d1_is_overloaded_is_a_503_runpod_sends_again(entry, tmp_path, fake_runpod, capsys,
                                                                      log_lines):
    env = make_env(tmp_path, fake_runpod.base)
    worker = Worker(entry, env)
    job_id = worker.call("POST", "/api/queue/create", CREATE, AUTH)[1]["job_id"]
    runpod_id = worker.call("GET", f"/api/status/{job_id}", headers=AUTH)[1]["runpod_job_id"]
    d1 = env.DB
    env.DB = AtItsSizeLimit(d1, PASSING[2])
    worker = Worker(entry, env)
    delivery = {"id": runpod_id, "status": "FAILED", "error": "oom"}
    status, body, headers = worker.deliver(job_id, delivery)
    assert (status, body["error"]["code"], headers["retry-after"]) == (503, "database_busy", "5"), body

    env.DB = d1  # RunPod's next delivery is applied
    worker = Worker(entry, env)
    assert worker.deliver(job_id, delivery)[0] == 200
    assert worker.call("GET", f"/api/status/{job_id}", headers=AUTH)[1]["status"] == "failed"
    _lines(capsys, log_lines)
