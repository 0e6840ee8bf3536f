"""The Worker entry over tests/service's D1 stand-in, its binding throwing one of D1's errors, as the tests of the
errors a client is to retry use it (test_review24_d1_transient, tests/pyodide/test_review30_cfw_d1_transient)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from service_testkit import API_TOKEN
from test_review18_full_d1 import CREATE, AtItsSizeLimit, Worker, _lines
from test_service_cloudflare_entry import _entry, make_env

AUTH = {"authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(name="entry")
def d1_entry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The Worker entry, its binding's nulls as Pyodide gives them (`JsNull`)."""
    yield from _entry(monkeypatch, with_jsnull=True)


def create_while_d1_throws(entry: Any, tmp_path, fake_runpod: Any, capsys: Any, log_lines: list[str],
                           error: str) -> tuple[dict, dict, Worker]:
    """A create while D1 throws `error` is a 503 `database_busy` to retry shortly, with `Retry-After: 5`; RunPod ran
    nothing and a `database.busy` line quotes D1's error; /healthz is then 503 `database_unavailable`; with D1 back,
    the client's retry is taken. The busy line, /healthz's body, and the Worker on D1 back."""
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

    status, health, _ = worker.call("GET", "/healthz")
    assert (status, health["error"]["code"]) == (503, "database_unavailable"), health

    env.DB = d1  # D1 back: the client's retry is taken
    worker = Worker(entry, env)
    assert worker.call("POST", "/api/queue/create", CREATE, AUTH)[0] == 202
    return line, health, worker


def job_then_d1_throws(entry: Any, tmp_path, fake_runpod: Any, error: str) -> tuple[Any, Any, Worker, str, str]:
    """A job created while D1 worked, then its binding throwing `error`: the env, the working D1 (to put back), a
    Worker on the throwing one, the job's id and its RunPod id."""
    env = make_env(tmp_path, fake_runpod.base)
    worker = Worker(entry, env)
    job_id = worker.call("POST", "/api/queue/create", CREATE, AUTH)[1]["job_id"]
    runpod_id = worker.call("GET", f"/api/status/{job_id}", headers=AUTH)[1]["runpod_job_id"]
    d1 = env.DB
    env.DB = AtItsSizeLimit(d1, error)
    return env, d1, Worker(entry, env), job_id, runpod_id
