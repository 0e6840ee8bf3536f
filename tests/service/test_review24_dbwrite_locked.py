"""The local database locked by another process (a `goldgate prune` batch, a `sqlite3` shell left inside a
transaction) past the service's busy timeout. Before, a create and a webhook were a bare 500 `internal`, the
answer a bug gets, with no hint to retry; GET /healthz said 200 while every write failed; and writes that had
queued up together were retried one by one after the group failed, each waiting the whole busy timeout again
with the event loop stopped (four creates at once froze the server for 40 s)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_runpod_plane import FakeRunPod
from service_testkit import API_TOKEN, BUCKET, RUNPOD_KEY, Harness, LogCapture, make_config

from service.app import create_app
from service.http import Request
from service.httpx_transport import HttpxTransport
from service.runpod import HttpRunPodGateway
from service.s3_store import S3ResultStore
from service.sqlite_database import SqliteDatabase

CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}


@pytest.fixture
def svc(db_path: Path, moto_endpoint: str, fake_runpod: FakeRunPod, log_lines: LogCapture, s3: Any,
        _store_client: Any) -> Iterator[Harness]:
    """The testkit's harness, over a database whose busy timeout is 50 ms instead of 10 s."""
    config = make_config(runpod_endpoint_base=fake_runpod.base, db_path=str(db_path), s3_endpoint_url=moto_endpoint)
    db = SqliteDatabase(db_path, busy_timeout_ms=50)
    transport = HttpxTransport()
    gateway = HttpRunPodGateway(transport, fake_runpod.base, RUNPOD_KEY, timeout_s=5)
    clock = [1_800_000_000.0]
    app = create_app(config, db, S3ResultStore(_store_client, BUCKET), gateway, log_sink=log_lines.sink,
                     clock=lambda: clock[0])
    harness = Harness(app, db, s3, fake_runpod, clock)
    yield harness
    harness.run(transport.aclose())
    harness.loop.close()
    db.close()


@pytest.fixture
def lock(db_path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's connection, holding the database's write lock until the test rolls it back."""
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    yield other
    if other.in_transaction:
        other.execute("ROLLBACK")
    other.close()


def _busy(status: int, body: dict, headers: dict) -> None:
    assert status == 503, (status, body)
    assert body["error"]["code"] == "database_busy", body
    assert "retry it shortly" in body["error"]["message"], body
    assert headers["retry-after"] == "5", headers


def _events(log_lines: list[str], event: str) -> list[dict]:
    return [line for line in map(json.loads, log_lines) if line["event"] == event]


def test_a_create_on_a_locked_database_is_a_503_to_retry_shortly_and_never_reaches_runpod(svc, lock, log_lines):
    _busy(*svc.call("POST", "/api/queue/create", CREATE))
    assert svc.fake.runs == [], "RunPod ran a job the database never recorded"
    [line] = _events(log_lines, "database.busy")
    assert (line["level"], line["reason"]) == ("error", "database_busy"), line
    assert line["http"] == {"method": "POST", "path": "/api/queue/create", "status": 503}, line
    assert "is locked" in line["error"]["message"] and "busy timeout" in line["error"]["message"], line

    status, body, _ = svc.call("GET", "/healthz", token=None)
    assert status == 503 and body["error"]["code"] == "database_unavailable", body
    assert "(database_busy)" in body["error"]["message"] and str(svc.db.path) not in body["error"]["message"]

    lock.execute("ROLLBACK")
    status, created, _ = svc.call("POST", "/api/queue/create", CREATE)
    assert status == 202, created
    assert len(svc.fake.runs) == 1 and svc.job(created["job_id"])["status"] == "queued"
    assert svc.call("GET", "/healthz", token=None)[0] == 200, "a write taken again clears the health check"


def test_a_webhook_on_a_locked_database_is_refused_for_runpod_to_retry_with_nothing_half_written(svc, db_path,
                                                                                               log_lines):
    job_id = svc.create()["job_id"]
    failed = {"id": svc.runpod_id(job_id), "status": "FAILED", "error": "out of memory", "executionTime": 900}
    before = svc.job(job_id)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        _busy(*svc.deliver(job_id, failed))
        assert svc.job(job_id) == before
        assert svc.rows("SELECT * FROM job_metrics") == [] and svc.rows("SELECT * FROM webhook_deliveries") == []
        [line] = _events(log_lines, "database.busy")
        assert line["job_id"] == job_id and line["http"]["status"] == 503, line
    finally:
        other.execute("ROLLBACK")
        other.close()
    status, outcome, _ = svc.deliver(job_id, failed)  # RunPod's retry
    assert status == 200 and outcome["status"] == "failed", outcome
    assert len(svc.rows("SELECT * FROM job_metrics WHERE job_id = ?", (job_id,))) == 1


def test_writes_queued_together_on_a_locked_database_are_refused_together(svc, lock):
    async def four_creates() -> list[Any]:
        return await asyncio.gather(*(svc.app.handle(_request()) for _ in range(4)))

    answers = svc.run(four_creates())
    assert [a.status for a in answers] == [503] * 4
    assert all(json.loads(a.body)["error"]["code"] == "database_busy" for a in answers)
    assert svc.fake.runs == []


def test_the_service_answers_other_requests_while_a_write_waits_for_the_lock(db_path, svc, lock):
    """The wait for another process's lock stopped the event loop (10 s in a stack): every request waited with
    the write, a read, /healthz, a download. Now a read is answered while the write waits, and the write is
    taken once the lock is released."""
    waiting = SqliteDatabase(db_path, busy_timeout_ms=60_000)  # still waiting below, however slow the machine
    svc.app.db = waiting
    order: list[str] = []

    async def create_then_read() -> None:
        create = asyncio.ensure_future(svc.app.handle(_request()))
        create.add_done_callback(lambda _: order.append("create"))
        for _ in range(5):
            await asyncio.sleep(0)  # the create queues its write, which finds the lock taken
        health = await svc.app.handle(Request("GET", "/healthz", "", {}, b""))
        order.append(f"healthz {health.status}")
        lock.execute("ROLLBACK")
        answer = await create
        order.append(f"created {answer.status}")

    try:
        svc.run(create_then_read())
    finally:
        waiting.close()
    assert order == ["healthz 200", "create", "created 202"], order
    assert len(svc.fake.runs) == 1


def _request() -> Request:
    return Request("POST", "/api/queue/create", "", {"authorization": f"Bearer {API_TOKEN}"},
                   json.dumps(CREATE).encode())
