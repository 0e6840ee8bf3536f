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

import pytest
from d1_transient_support import AUTH, create_while_d1_throws, d1_entry, job_then_d1_throws
from service_testkit import fake_runpod
from test_review18_full_d1 import Worker, _lines

__all__ = ["d1_entry", "fake_runpod"]  # the `entry` and `fake_runpod` fixtures

PASSING = ["D1_ERROR: Cannot resolve D1 DB due to transient issue on remote node.",
           "D1_ERROR: D1 DB is overloaded. Requests queued for too long.",
           "D1_ERROR: D1 DB is overloaded. Too many requests queued.",
           "D1_ERROR: D1 DB storage operation exceeded timeout which caused object to be reset."]


@pytest.mark.parametrize("error", PASSING)
def test_a_create_d1_cannot_take_for_now_is_a_503_to_retry_and_healthz_says_so(entry, tmp_path, fake_runpod,
                                                                             capsys, log_lines, error):
    create_while_d1_throws(entry, tmp_path, fake_runpod, capsys, log_lines, error)
    _lines(capsys, log_lines)


def test_a_webhook_while_d1_is_overloaded_is_a_503_runpod_sends_again(entry, tmp_path, fake_runpod, capsys,
                                                                      log_lines):
    env, d1, worker, job_id, runpod_id = job_then_d1_throws(entry, tmp_path, fake_runpod, PASSING[2])
    delivery = {"id": runpod_id, "status": "FAILED", "error": "oom"}
    status, body, headers = worker.deliver(job_id, delivery)
    assert (status, body["error"]["code"], headers["retry-after"]) == (503, "database_busy", "5"), body

    env.DB = d1  # RunPod's next delivery is applied
    worker = Worker(entry, env)
    assert worker.deliver(job_id, delivery)[0] == 200
    assert worker.call("GET", f"/api/status/{job_id}", headers=AUTH)[1]["status"] == "failed"
    _lines(capsys, log_lines)
