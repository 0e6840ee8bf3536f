"""D1's transient errors on the Worker. Cloudflare's "Debug D1" page lists three D1_ERRORs whose recommended action
is "Retry the operation": the Durable Object holding the database was reset because its code was updated, or failed
to start ("... storage caused object to be reset"), or the network to it was lost. D1 retries a read-only query
itself; a write it leaves to the caller. Before, each was a 500 `internal`, the answer a bug gets: a client had no
word to retry, and the line (`http.unhandled`) was the one an operator pages on for a bug. Now a 503
`database_busy` with `Retry-After: 5`, a `database.busy` line quoting D1's error, and /healthz says so until a
write is taken again."""

from __future__ import annotations

from typing import Any

import pytest
from service_testkit import API_TOKEN
from test_review18_full_d1 import CREATE, AtItsSizeLimit, Worker, _lines
from test_service_cloudflare_entry import _entry, make_env

AUTH = {"authorization": f"Bearer {API_TOKEN}"}
TRANSIENT = ["D1_ERROR: D1 DB reset because its code was updated.",
             "D1_ERROR: Internal error while starting up D1 DB storage caused object to be reset.",
             "D1_ERROR: Network connection lost."]


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Any:
    yield from _entry(monkeypatch, with_jsnull=True)


@pytest.mark.parametrize("error", TRANSIENT)
def test_a_write_d1_says_to_retry_is_a_503_to_retry_shortly_and_healthz_says_so(entry, tmp_path, fake_runpod,
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
    assert error in line["error"]["message"] and "transient" in line["message"], line

    status, body, _ = worker.call("GET", "/healthz")
    assert (status, body["error"]["code"]) == (503, "database_unavailable"), body
    assert "(database_busy)" in body["error"]["message"]

    env.DB = d1  # D1 back: the client's retry is taken, and the health check clears
    worker = Worker(entry, env)
    assert worker.call("POST", "/api/queue/create", CREATE, AUTH)[0] == 202
    assert worker.call("GET", "/healthz")[0] == 200
    _lines(capsys, log_lines)


@pytest.mark.parametrize("error, code", [(TRANSIENT[-1], "database_busy"),
                                         ("D1_ERROR: Exceeded maximum DB size", "storage_full")])
def test_a_webhook_d1_refuses_is_reported_by_healthz_too(entry, tmp_path, fake_runpod, capsys, log_lines, error,
                                                         code):
    """A webhook's outcome is written in one batch (as a create with an Idempotency-Key is): a refused batch was
    answered 503 but left /healthz at 200."""
    env = make_env(tmp_path, fake_runpod.base)
    worker = Worker(entry, env)
    job_id = worker.call("POST", "/api/queue/create", CREATE, AUTH)[1]["job_id"]
    runpod_id = worker.call("GET", f"/api/status/{job_id}", headers=AUTH)[1]["runpod_job_id"]
    d1 = env.DB
    env.DB = AtItsSizeLimit(d1, error)
    worker = Worker(entry, env)
    status, body, _ = worker.deliver(job_id, {"id": runpod_id, "status": "FAILED", "error": "oom"})
    assert (status, body["error"]["code"]) == (503, code), body
    status, body, _ = worker.call("GET", "/healthz")
    assert (status, body["error"]["code"]) == (503, "database_unavailable"), body
    assert f"({code})" in body["error"]["message"], body
    _lines(capsys, log_lines)
