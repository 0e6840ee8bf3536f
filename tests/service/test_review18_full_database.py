"""A full database: the disk under the local stack's SQLite file (SQLITE_FULL, "database or disk is full"; a
full WAL says the same), made here as SQLite itself makes it: `PRAGMA max_page_count` on the service's
connection at the pages the file has. A write needing another page then fails exactly as on a full disk (a
write that fits a page with room would still pass, where a full disk under a WAL refuses every commit: so the
rows written here are each larger than a page). Writes fail, reads go on. A create must not reach RunPod (a
job RunPod runs that the database never recorded is GPU time paid for nothing) and must tell its client to
retry later; a webhook must not be answered 200 (RunPod would stop retrying and the outcome would be lost) and
must leave nothing half-written. Before, both were a bare 500 `internal`, the answer a bug gets, and the line
said `reason: internal` under the handler's event."""

from __future__ import annotations

import json

import pytest
from service_testkit import Harness

PAGE_SIZED = 6000  # bytes: more than one 4 KiB page holds, so the row needs an overflow page
# 2,000 characters, the most the workflow takes: each is a 6-byte \u escape in the job's inputs_json.
PROMPT = "\u706f\u5854" * 1000  # "lighthouse"


def fill(svc: Harness) -> None:
    """The database, full: no page may be added, and none is free."""
    conn = svc.db.conn
    conn.execute("VACUUM")  # no free page left either
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert conn.execute(f"PRAGMA max_page_count = {pages}").fetchone()[0] == pages


def make_room(svc: Harness) -> None:
    """What the operator does: frees space (here: lifts the cap)."""
    svc.db.conn.execute("PRAGMA max_page_count = 1073741823")


def _full_lines(log_lines: list[str]) -> list[dict]:
    return [line for line in map(json.loads, log_lines) if line["event"] == "database.full"]


def _storage_full(status: int, body: dict, headers: dict) -> None:
    assert status == 503, (status, body)
    assert body["error"]["code"] == "storage_full", body
    assert "retry it later" in body["error"]["message"], body
    assert headers["retry-after"] == "60", "a full database stays full until someone makes room: not 5 s"


CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": PROMPT}}


def test_a_create_on_a_full_database_is_a_503_to_retry_and_never_reaches_runpod(svc, log_lines):
    fill(svc)
    _storage_full(*svc.call("POST", "/api/queue/create", CREATE))
    assert svc.fake.runs == [], "RunPod ran a job the database never recorded"
    assert svc.rows("SELECT id FROM jobs") == []
    [line] = _full_lines(log_lines)
    assert line["level"] == "critical" and line["reason"] == "storage_full", line
    assert line["http"] == {"method": "POST", "path": "/api/queue/create", "status": 503}, line
    assert "database or disk is full" in line["error"]["message"], line
    assert line["trace_id"], "the line names the request's trace, to find the client's retry by"

    make_room(svc)
    status, created, _ = svc.call("POST", "/api/queue/create", CREATE)
    assert status == 202, created
    assert len(svc.fake.runs) == 1 and svc.job(created["job_id"])["status"] == "queued"


def test_an_idempotent_create_on_a_full_database_keeps_no_claim_on_its_key(svc):
    """The key row and the job are one batch: refused whole, the client's retry with the same key creates the
    job (a key left claimed would answer the retry with a job that does not exist)."""
    key = {"idempotency-key": "review18-full-1"}
    fill(svc)
    _storage_full(*svc.call("POST", "/api/queue/create", CREATE, headers=key))
    assert svc.rows("SELECT * FROM idempotency_keys") == []
    make_room(svc)
    status, body, headers = svc.call("POST", "/api/queue/create", CREATE, headers=key)
    assert status == 202 and "idempotent-replayed" not in headers, body
    assert len(svc.fake.runs) == 1 and svc.job(body["job_id"])["status"] == "queued"


def test_a_webhook_on_a_full_database_is_refused_for_runpod_to_retry_with_nothing_half_written(svc,
                                                                                             log_lines):
    job_id = svc.create()["job_id"]
    image = svc.put_result(job_id)
    completed = svc.completed(job_id, [image], timings={"total_ms": 2500, "trace": "x" * PAGE_SIZED})
    before = svc.job(job_id)
    fill(svc)

    status, body, headers = svc.deliver(job_id, completed)
    _storage_full(status, body, headers)
    assert svc.job(job_id) == before, "the job changed though its delivery was refused"
    assert svc.rows("SELECT * FROM webhook_deliveries") == [] and svc.rows("SELECT * FROM job_metrics") == []
    [line] = _full_lines(log_lines)
    assert line["job_id"] == job_id and line["trace_id"] == before["trace_id"], line
    assert line["http"]["status"] == 503 and line["level"] == "critical", line

    # Reads go on meanwhile: the client polls its job and downloads what is stored.
    status, view, _ = svc.call("GET", f"/api/status/{job_id}")
    assert status == 200 and view["status"] == "queued", view
    status, data, _ = svc.call("GET", f"/api/result/{image['key']}")
    assert status == 200 and data == b"\x89PNG fake image bytes"

    make_room(svc)  # RunPod's retry of the same delivery then settles the job
    status, body, _ = svc.deliver(job_id, completed)
    assert (status, body) == (200, {"applied": True, "reason": "applied", "status": "completed"})
    assert len(svc.rows("SELECT * FROM job_metrics")) == 1


def test_a_write_through_query_on_a_full_database_is_storage_full_too(svc):
    """Retention's statements go through `query` (D1 runs them so); the adapter names a full database there
    too."""
    from service.ports import StorageFull  # here: the module's other tests run on a tree without it

    fill(svc)
    with pytest.raises(StorageFull, match="is full .*database or disk is full"):
        svc.run(svc.db.query("INSERT INTO retention_cursor (walk, reached) VALUES (?, ?) RETURNING walk",
                             ("review18", "x" * PAGE_SIZED)))
    assert svc.rows("SELECT * FROM retention_cursor") == []
