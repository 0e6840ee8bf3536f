"""D1 at its size limit (10 GB on Workers Paid): writes fail with a JS Error, reads still work, R2 has no such
cap. Driven through the Worker entry (`Default.fetch`) over the D1 stand-in of test_service_cloudflare_entry,
which backs D1 with SQLite and rejects as D1 does ("D1_ERROR: <SQLite's message>: SQLITE_<CODE>"): a
`max_page_count` there fails a write exactly as a database that cannot grow. Production Workers report the
limit as "D1_ERROR: Exceeded maximum DB size"; that text is injected at the binding. Before, both were a 500
`internal`: the client could not tell a full database from a bug, and the line named no cause an operator
could alert on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from service_testkit import API_TOKEN, WEBHOOK_SECRET
from test_service_cloudflare_entry import D1, Ctx, Fetch, JsException, JsRequest, _entry, make_env

from service.signing import webhook_signature

AUTH = {"authorization": f"Bearer {API_TOKEN}"}
# 2,000 characters, the most the workflow takes: each a 6-byte \u escape in inputs_json, past one page
CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "\u706f\u5854" * 1000}}


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _entry(monkeypatch, with_jsnull=True)


class Worker:
    def __init__(self, entry: Any, env: Any) -> None:
        entry.Default._app = entry.build_app(env, fetch=Fetch())
        self.worker = entry.Default(Ctx(), env)

    def call(self, method: str, path: str, body: Any = None,
             headers: dict | None = None) -> tuple[int, Any, dict]:
        raw = json.dumps(body).encode() if body is not None else b""
        answer = asyncio.run(self.worker.fetch(JsRequest(method, "https://api.example" + path, raw, headers)))
        payload = json.loads(answer.body) if isinstance(answer.body, str) else answer.body
        return answer.status, payload, answer.headers

    def deliver(self, job_id: str, payload: dict) -> tuple[int, Any, dict]:
        query = f"job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}"
        return self.call("POST", f"/api/runpod/webhook?{query}", payload)


def _fill(d1: D1) -> None:
    """The stand-in's database can grow no more, and has no free page."""
    d1.conn.execute("VACUUM")
    pages = d1.conn.execute("PRAGMA page_count").fetchone()[0]
    d1.conn.execute(f"PRAGMA max_page_count = {pages}")


def _storage_full(status: int, body: Any, headers: dict) -> None:
    assert status == 503, (status, body)
    assert body["error"]["code"] == "storage_full" and "retry it later" in body["error"]["message"], body
    assert headers["retry-after"] == "60"


def _lines(capsys: pytest.CaptureFixture[str], log_lines: list[str]) -> list[dict]:
    out = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    log_lines.extend(out)  # schema-checked and scanned for secrets at teardown
    return [json.loads(line) for line in out]


def test_a_create_on_a_full_d1_is_a_503_and_reaches_no_runpod(entry, tmp_path, fake_runpod, capsys,
                                                              log_lines):
    env = make_env(tmp_path, fake_runpod.base)
    worker = Worker(entry, env)
    _fill(env.DB)
    _storage_full(*worker.call("POST", "/api/queue/create", CREATE, AUTH))
    assert fake_runpod.runs == [] and env.DB.conn.execute("SELECT COUNT(*) FROM jobs").fetchone() == (0,)
    [line] = [line for line in _lines(capsys, log_lines) if line["http"] is not None]
    assert (line["event"], line["level"]) == ("database.full", "critical"), line
    assert line["reason"] == "storage_full", line
    assert "SQLITE_FULL" in line["error"]["message"], line

    env.DB.conn.execute("PRAGMA max_page_count = 1073741823")  # room again
    status, body, _ = worker.call("POST", "/api/queue/create", CREATE, AUTH)
    assert status == 202 and len(fake_runpod.runs) == 1, body


def test_a_webhook_on_a_full_d1_is_refused_until_there_is_room(entry, tmp_path, fake_runpod, capsys,
                                                               log_lines):
    env = make_env(tmp_path, fake_runpod.base)
    worker = Worker(entry, env)
    status, created, _ = worker.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                                   "inputs": {"prompt": "p"}}, AUTH)
    assert status == 202, created
    job_id = created["job_id"]
    rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
    key = f"results/{job_id}/0.png"
    env.RESULTS.put(key, b"\x89PNG data", "image/png")
    completed = {"id": rid, "status": "COMPLETED", "delayTime": 3, "executionTime": 1001,
                 "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 9}],
                            "timings": {"total_ms": 1001, "trace": "x" * 6000}}}
    before = env.DB.conn.execute("SELECT * FROM jobs").fetchall()
    _fill(env.DB)

    _storage_full(*worker.deliver(job_id, completed))
    assert env.DB.conn.execute("SELECT * FROM jobs").fetchall() == before
    assert env.DB.conn.execute("SELECT COUNT(*) FROM webhook_deliveries").fetchone() == (0,)
    status, view, _ = worker.call("GET", f"/api/status/{job_id}", headers=AUTH)  # reads go on
    assert status == 200 and view["status"] == "queued", view
    full = [line for line in _lines(capsys, log_lines) if line["event"] == "database.full"]
    assert [(line["job_id"], line["http"]["status"]) for line in full] == [(job_id, 503)], full

    env.DB.conn.execute("PRAGMA max_page_count = 1073741823")  # RunPod's retry, once there is room
    assert worker.deliver(job_id, completed)[:2] == (200, {"applied": True, "reason": "applied",
                                                           "status": "completed"})


class AtItsSizeLimit:
    """A D1 binding at D1's size limit, as production Workers report it: every write is refused with `error`;
    reads work."""

    def __init__(self, d1: D1, error: str) -> None:
        self.d1, self.error = d1, error

    def prepare(self, sql: str) -> Any:
        statement = self.d1.prepare(sql)
        if sql.lstrip().upper().startswith("SELECT"):
            return statement
        return _Refused(self.error)

    async def batch(self, statements: list[Any]) -> Any:
        raise JsException(self.error)


class _Refused:
    def __init__(self, error: str) -> None:
        self.error = error

    def bind(self, *args: Any) -> _Refused:
        return self

    async def run(self) -> Any:
        raise JsException(self.error)

    all = run


@pytest.mark.parametrize("error", ["D1_ERROR: Exceeded maximum DB size",
                                   "D1_ERROR: Exceeded maximum DB size."])
def test_d1s_own_size_limit_error_is_storage_full(entry, tmp_path, fake_runpod, capsys, log_lines, error):
    env = make_env(tmp_path, fake_runpod.base)
    worker = Worker(entry, env)
    status, created, _ = worker.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                                   "inputs": {"prompt": "p"}}, AUTH)
    env.DB = AtItsSizeLimit(env.DB, error)
    worker = Worker(entry, env)
    _storage_full(*worker.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                             "inputs": {"prompt": "q"}}, AUTH))
    assert len(fake_runpod.runs) == 1, "only the job created before D1 filled up reached RunPod"
    status, view, _ = worker.call("GET", f"/api/status/{created['job_id']}", headers=AUTH)
    assert status == 200 and view["status"] == "queued", view
    [full] = [line for line in _lines(capsys, log_lines) if line["event"] == "database.full"]
    assert error in full["error"]["message"], full


@pytest.mark.parametrize("error, status, code", [
    # D1 lists it as transient, to retry: a 503 to retry shortly (tests/service/test_review24_d1_transient.py)
    ("D1_ERROR: Network connection lost.", 503, "database_busy"),
    ("D1_ERROR: no such table: jobs: SQLITE_ERROR", 500, "internal"),
])
def test_another_d1_error_on_a_write_is_not_taken_for_a_full_database(entry, tmp_path, fake_runpod, capsys,
                                                                      log_lines, error, status, code):
    """Matched conservatively: a dropped connection is no reason to tell an operator to delete data."""
    env = make_env(tmp_path, fake_runpod.base)
    env.DB = AtItsSizeLimit(env.DB, error)
    worker = Worker(entry, env)
    answered, body, _ = worker.call("POST", "/api/queue/create", CREATE, AUTH)
    assert (answered, body["error"]["code"]) == (status, code), body
    assert not [line for line in _lines(capsys, log_lines) if line["event"] == "database.full"]
