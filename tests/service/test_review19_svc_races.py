"""Races a client or RunPod meets, played with the real local components (SQLite, moto S3, the fake RunPod
plane with /cancel): a second request, as another Worker isolate would serve it, runs on the same database
while the first waits on RunPod. A create replayed with its Idempotency-Key while the first is still being
submitted; RunPod's CANCELLED webhook landing while a cancel waits on RunPod's answer; webhooks and a cancel
while the database is full."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from service_testkit import API_TOKEN, BUCKET, RUNPOD_KEY, S3_KEY_ID, S3_SECRET, WEBHOOK_SECRET, make_config
from test_review17_cancel_route import CancellingRunPod, _cancel
from test_review18_full_database import PAGE_SIZED, fill, make_room

from service.app import create_app
from service.http import Request, Response
from service.httpx_transport import HttpxTransport
from service.runpod import HttpRunPodGateway
from service.s3_store import S3ResultStore
from service.signing import webhook_signature
from service.sqlite_database import SqliteDatabase

CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse at dusk"}}


@pytest.fixture
def fake_runpod():  # the kit's plane, with /cancel
    fake = CancellingRunPod(RUNPOD_KEY).start()
    yield fake
    fake.stop()


def _meanwhile(svc, db_path: Path, moto_endpoint: str, log_lines, request: Request) -> Response:
    """`request` answered by another App on the same database file (another isolate, another process), on its
    own event loop: called from the fake RunPod's handler while the first request waits on its answer."""

    async def serve() -> Response:
        db = SqliteDatabase(db_path)
        transport = HttpxTransport()
        app = create_app(make_config(runpod_endpoint_base=svc.fake.base, db_path=str(db_path),
                                     s3_endpoint_url=moto_endpoint),
                         db, S3ResultStore.connect(moto_endpoint, BUCKET, S3_KEY_ID, S3_SECRET),
                         HttpRunPodGateway(transport, svc.fake.base, RUNPOD_KEY, timeout_s=5),
                         log_sink=log_lines.sink, clock=lambda: svc.clock[0])
        try:
            return await app.handle(request)
        finally:
            await transport.aclose()
            db.close()

    return asyncio.run(serve())


def _create_request(key: str) -> Request:
    headers = {"authorization": f"Bearer {API_TOKEN}", "idempotency-key": key}
    return Request("POST", "/api/queue/create", "", headers, json.dumps(CREATE).encode())


def _webhook_request(job_id: str, payload: dict[str, Any]) -> Request:
    query = f"job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}"
    return Request("POST", "/api/runpod/webhook", query, {}, json.dumps(payload).encode())


def _once(action) -> Any:
    answers: list[Response] = []

    def hook(*_: Any) -> None:
        if not answers:
            answers.append(action())

    return hook, answers


def _events(log_lines) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_lines]


def test_a_create_replayed_while_the_first_waits_on_runpod_answers_the_same_job_and_runs_it_once(
        svc, db_path, moto_endpoint, log_lines):
    key = {"idempotency-key": "r19-wait"}
    hook, replays = _once(lambda: _meanwhile(svc, db_path, moto_endpoint, log_lines,
                                             _create_request(key["idempotency-key"])))
    svc.fake.on_run = hook
    status, first, headers = svc.call("POST", "/api/queue/create", CREATE, headers=key)
    assert status == 202 and "idempotent-replayed" not in headers, first
    [replay] = replays
    body = json.loads(replay.body)
    assert (replay.status, replay.headers.get("idempotent-replayed")) == (202, "true"), body
    assert body == {"job_id": first["job_id"], "status": "queued", "trace_id": first["trace_id"]}
    assert len(svc.fake.runs) == 1, "the replay ran the job a second time"
    [job] = svc.rows("SELECT id, status, runpod_job_id FROM jobs")
    assert job["id"] == first["job_id"] and job["runpod_job_id"] is not None


def test_a_replay_answered_while_runpod_refuses_the_first_leaves_the_key_free_for_a_new_job(
        svc, db_path, moto_endpoint, log_lines):
    """The replay's client was handed the job while it was being submitted; RunPod then refused it, so the job
    is failed and its key freed: the client sees `failed` on its status, and its retry with the key submits
    anew (rather than being handed the failed job for a day)."""
    key = {"idempotency-key": "r19-no"}
    hook, replays = _once(lambda: _meanwhile(svc, db_path, moto_endpoint, log_lines,
                                             _create_request(key["idempotency-key"])))
    svc.fake.on_run, svc.fake.run_mode = hook, "refuse"
    status, first, _ = svc.call("POST", "/api/queue/create", CREATE, headers=key)
    assert (status, first["error"]["code"]) == (502, "runpod_refused"), first
    [replay] = replays
    job_id = first["error"]["job_id"]
    assert (replay.status, json.loads(replay.body)["job_id"]) == (202, job_id)
    status, view, _ = svc.call("GET", f"/api/status/{job_id}")
    assert (status, view["status"]) == (200, "failed"), view
    assert svc.rows("SELECT * FROM idempotency_keys") == []

    svc.fake.on_run, svc.fake.run_mode = None, "accept"
    status, again, headers = svc.call("POST", "/api/queue/create", CREATE, headers=key)
    assert status == 202 and "idempotent-replayed" not in headers and again["job_id"] != job_id, again
    assert len(svc.fake.runs) == 2


def _running(svc) -> tuple[str, str]:
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    svc.fake.set_status(rid, {"id": rid, "status": "IN_PROGRESS", "delayTime": 900, "executionTime": 20_000})
    svc.clock[0] += 30
    return job_id, rid


@pytest.mark.parametrize("timings", [
    {"delayTime": 900, "executionTime": 20_000},  # as RunPod's /status then tells it: the same delivery
    {"delayTime": 900},  # a webhook without the run time: another delivery with the same outcome
])
def test_runpods_cancelled_webhook_landing_while_the_cancel_waits_is_recorded_once(
        svc, db_path, moto_endpoint, log_lines, timings):
    """RunPod stops the job on the cancel's /cancel and may send its CANCELLED webhook at once: it can be
    recorded before the cancel's answer is. The job is cancelled once (one metrics row, one applied delivery);
    the cancel's own delivery is the same outcome again, not a conflict an operator is warned of."""
    job_id, rid = _running(svc)
    webhook = {"id": rid, "status": "CANCELLED", **timings}
    hook, answers = _once(lambda: _meanwhile(svc, db_path, moto_endpoint, log_lines,
                                             _webhook_request(job_id, webhook)))
    svc.fake.on_cancel = hook
    status, body, _ = _cancel(svc, job_id)
    [answer] = answers
    assert (answer.status, json.loads(answer.body)["applied"]) == (200, True)
    assert status == 200, body
    assert (body["status"], body["applied"], body["runpod_status"]) == ("cancelled", False, "CANCELLED"), body
    assert body["reason"] == ("duplicate" if "executionTime" in timings else "no_change"), body
    # before: "nothing changed" (no_change), or "another cancel recorded it first" (the webhook had)
    assert body["message"] == (f"job {job_id} is cancelled: RunPod stopped it; RunPod's webhook or another "
                               "cancel recorded it first"), body
    job = svc.job(job_id)
    assert job["status"] == "cancelled"
    [metrics] = svc.rows("SELECT status FROM job_metrics WHERE job_id = ?", (job_id,))
    assert metrics["status"] == "cancelled"
    applied = svc.rows("SELECT source FROM webhook_deliveries WHERE job_id = ? AND applied = 1", (job_id,))
    assert applied == [{"source": "webhook"}]
    lines = _events(log_lines)
    conflicts = [e for e in lines if e["event"] == "webhook.terminal_conflict"]
    assert not conflicts, "a warning for the same outcome"
    assert not [e for e in lines if e["level"] in ("warning", "error", "critical")
                and e["event"] not in ("job.finished",)], [e["event"] for e in lines]


def _big_cancel_status(svc, rid: str) -> None:
    """RunPod's /status for the job, with worker timings large enough that recording it needs a new page."""
    svc.fake.set_status(rid, {"id": rid, "status": "IN_PROGRESS", "delayTime": 900, "executionTime": 20_000,
                              "output": {"timings": {"total_ms": 20_000, "trace": "t" * PAGE_SIZED}}})


def test_a_cancel_on_a_full_database_is_a_503_and_its_retry_records_it_once_there_is_room(svc, log_lines):
    """RunPod stops the job, the database cannot record it: the client is told to retry (the job stays as it
    was recorded); its retry, once the operator has made room, records the cancel: RunPod answers CANCELLED
    again."""
    job_id, rid = _running(svc)
    _big_cancel_status(svc, rid)
    before = svc.job(job_id)
    fill(svc)
    status, body, headers = _cancel(svc, job_id)
    assert (status, body["error"]["code"], headers.get("retry-after")) == (503, "storage_full", "60"), body
    assert svc.job(job_id) == before and svc.rows("SELECT * FROM job_metrics") == []
    [full] = [e for e in _events(log_lines) if e["event"] == "database.full"]
    assert (full["job_id"], full["http"]["path"]) == (job_id, f"/api/cancel/{job_id}"), full
    assert not [e for e in _events(log_lines) if e.get("reason") == "internal"], "a full disk is no bug"

    make_room(svc)
    status, body, _ = _cancel(svc, job_id)
    assert (status, body["cancelled"], body["status"]) == (200, True, "cancelled"), body
    assert svc.fake.cancel_calls == [rid, rid]
    assert len(svc.rows("SELECT * FROM job_metrics WHERE job_id = ?", (job_id,))) == 1


def test_webhooks_during_a_full_database_a_repeat_is_answered_200_and_a_new_outcome_503(svc, log_lines):
    """While the database is full, RunPod's repeat of an outcome already recorded needs no write: it is
    answered 200 (a 503 would have RunPod retry it for nothing); a new outcome is refused for RunPod to
    send again, and nothing of it is kept."""
    done = svc.create()["job_id"]
    completed = svc.completed(done, [svc.put_result(done)])
    assert svc.deliver(done, completed)[1]["reason"] == "applied"
    waiting = svc.create()["job_id"]
    failed = {"id": svc.runpod_id(waiting), "status": "FAILED", "delayTime": 10, "executionTime": 300,
              "error": "CUDA out of memory",
              "output": {"timings": {"total_ms": 300, "trace": "x" * PAGE_SIZED}}}
    fill(svc)

    status, body, _ = svc.deliver(done, completed)
    assert (status, body["reason"], body["status"]) == (200, "duplicate", "completed"), body
    status, body, headers = svc.deliver(waiting, failed)
    assert (status, body["error"]["code"], headers.get("retry-after")) == (503, "storage_full", "60"), body
    assert svc.job(waiting)["status"] == "queued"
    assert [e["job_id"] for e in _events(log_lines) if e["event"] == "database.full"] == [waiting]
