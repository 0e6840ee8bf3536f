"""The cap on jobs in flight (api.max_jobs_in_flight): a create beyond it is answered 429 queue_full with
Retry-After, writes nothing, sends nothing to RunPod and leaves its Idempotency-Key free; a job frees its place
when it ends or when its own lifetime has passed; concurrent creates never get past the cap, on the local server
(SQLite) and on the Worker (D1)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_testkit import API_TOKEN, MIGRATIONS, LocalServer
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, make_env
from test_service_cloudflare_entry import entry as entry  # noqa: PLC0414 - the fixture, by its name

from goldgate.migrations import apply_sqlite
from service import jobs
from service.http import Request
from service.transitions import lifetime_ms

BODY = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}
LIFETIME_MS = 86_400_000 + 10_000 + 600_000  # the config's ttl_ms, its /run timeout (10 s) and 10 minutes


def _cap(svc: Any, cap: int, **config: Any) -> None:
    svc.app.config = dataclasses.replace(svc.app.config, max_jobs_in_flight=cap, **config)


def _create(svc: Any, key: str | None = None, prompt: str = "a lighthouse") -> tuple[int, Any, dict[str, str]]:
    headers = {"idempotency-key": key} if key is not None else None
    body = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": prompt}}
    return svc.call("POST", "/api/queue/create", body, headers=headers)


def _count(svc: Any, table: str = "jobs") -> int:
    return svc.rows(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]


def _failed(svc: Any, job_id: str) -> dict[str, Any]:
    return {"id": svc.runpod_id(job_id), "status": "FAILED", "delayTime": 5, "executionTime": 7, "error": "oom"}


def test_a_create_at_the_cap_is_answered_429_and_writes_and_sends_nothing(svc, log_lines) -> None:
    _cap(svc, 3)
    accepted = [_create(svc, prompt=f"p{i}") for i in range(3)]
    assert [status for status, _, _ in accepted] == [202, 202, 202]

    status, body, headers = _create(svc)

    assert status == 429 and body["error"]["code"] == "queue_full"
    assert "3 jobs are already queued or running" in body["error"]["message"]
    assert headers["retry-after"] == "30"
    assert _count(svc) == 3 and len(svc.fake.runs) == 3  # nothing written, RunPod not called
    [line] = [json.loads(x) for x in log_lines if json.loads(x)["event"] == "job.queue_full"]
    assert line["level"] == "warning" and line["reason"] == "queue_full" and line["http"]["status"] == 429
    assert line["data"] == {"workflow_id": "sdxl-txt2img", "max_jobs_in_flight": 3}
    assert line["job_id"] is None and line["trace_id"]  # no job was created: the line names none


def test_an_idempotency_key_refused_at_the_cap_stays_free_for_the_retry(svc) -> None:
    _cap(svc, 1)
    first = svc.create()

    status, body, _ = _create(svc, key="retry-me-later")

    assert status == 429 and body["error"]["code"] == "queue_full"
    assert _count(svc, "idempotency_keys") == 0 and _count(svc) == 1 and len(svc.fake.runs) == 1
    assert svc.deliver(first["job_id"], _failed(svc, first["job_id"]))[0] == 200  # its place is free again
    status, created, headers = _create(svc, key="retry-me-later")
    assert status == 202 and "idempotent-replayed" not in headers  # a new job, not a replay of a job never made
    assert svc.job(created["job_id"])["status"] == "queued" and len(svc.fake.runs) == 2
    status, replayed, headers = _create(svc, key="retry-me-later")
    assert status == 202 and headers["idempotent-replayed"] == "true" and replayed["job_id"] == created["job_id"]


def test_a_replay_at_the_cap_still_answers_its_job(svc) -> None:
    _cap(svc, 1)
    status, created, _ = _create(svc, key="the-one-key")
    assert status == 202

    status, replayed, headers = _create(svc, key="the-one-key")  # creates nothing: the cap does not stop it

    assert status == 202 and headers["idempotent-replayed"] == "true" and replayed["job_id"] == created["job_id"]
    assert _count(svc) == 1 and len(svc.fake.runs) == 1


def test_a_running_job_holds_its_place_and_an_ended_one_frees_it(svc) -> None:
    _cap(svc, 2)
    a, b = svc.create("a"), svc.create("b")
    running = {"id": svc.runpod_id(a["job_id"]), "status": "IN_PROGRESS", "delayTime": 5}
    assert svc.deliver(a["job_id"], running)[1]["status"] == "in_progress"
    assert _create(svc)[0] == 429

    image = svc.put_result(b["job_id"])
    assert svc.deliver(b["job_id"], svc.completed(b["job_id"], [image]))[1]["status"] == "completed"

    assert _create(svc, prompt="c")[0] == 202
    assert _create(svc, prompt="d")[0] == 429  # a (running) and c (queued) hold both places
    assert svc.deliver(a["job_id"], _failed(svc, a["job_id"]))[1]["status"] == "failed"
    assert _create(svc, prompt="e")[0] == 202


def test_a_job_whose_webhook_never_came_frees_its_place_once_its_own_lifetime_has_passed(svc) -> None:
    _cap(svc, 1, ttl_ms=3_600_000)
    lost = svc.create()  # RunPod's webhook for it never comes: `goldgate stuck` would list it
    _cap(svc, 1, ttl_ms=86_400_000)  # the stack's ttl raised to a day since: the job keeps the hour it was sent with
    own_lifetime_s = (3_600_000 + 10_000 + 600_000) / 1000
    start = svc.clock[0]

    svc.clock[0] = start + own_lifetime_s - 0.002
    assert _create(svc)[0] == 429  # RunPod may still run it: it holds its place
    svc.clock[0] = start + own_lifetime_s

    status, created, _ = _create(svc)

    assert status == 202 and svc.job(lost["job_id"])["status"] == "queued"  # still unrecovered, no longer counted
    svc.clock[0] += LIFETIME_MS / 1000 - 0.002
    assert _create(svc, prompt="next")[0] == 429  # the new job has the day the stack now sends
    svc.clock[0] += 0.002
    assert _create(svc, prompt="next")[0] == 202 and created["job_id"] != lost["job_id"]


@pytest.fixture
def conn(tmp_path: Path) -> Any:
    db = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    apply_sqlite(db, MIGRATIONS)
    yield db
    db.close()


def _row(conn: sqlite3.Connection, n: int, status: str, created_at_ms: int, ttl: Any, timeout: Any) -> None:
    conn.execute("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                 "created_at, created_at_ms, updated_at, policy_ttl_ms, run_timeout_ms) VALUES "
                 "(?, 's', 'w', 'v', '{}', 't', ?, 'x', ?, 'x', ?, ?)",
                 (f"{n:032x}", status, created_at_ms, ttl, timeout))


def test_the_count_of_jobs_in_flight_is_the_service_s_own_lifetime_of_each_job(conn) -> None:
    # The SQL count and transitions.lifetime_ms (what recover and the timings judge by) must not drift apart:
    # every shape of run policy a row can hold (none recorded before migration 0005, nonsense, the largest ttl).
    now_ms = 1_800_000_000_000
    n = 0
    for ttl in (None, 0, -1, 1, 3_600_000, 86_400_000, 7 * 86_400_000, 8 * 86_400_000, "86400000", "soon"):
        for timeout in (None, 0, -5, 10_000, 3_600_000, 2.5):
            for status in ("queued", "in_progress", "completed", "failed"):
                life = lifetime_ms({"policy_ttl_ms": ttl, "run_timeout_ms": timeout})
                for age in (0, life - 1, life, life + 1, -60_000, 9 * 86_400_000):
                    n += 1
                    _row(conn, n, status, now_ms - age, ttl, timeout)
    conn.row_factory = sqlite3.Row
    rows = [dict(row) for row in conn.execute("SELECT * FROM jobs")]  # as the service reads them back
    expected = sum(row["status"] in ("queued", "in_progress") and now_ms - row["created_at_ms"] < lifetime_ms(row)
                   for row in rows)
    conn.row_factory = None
    statement = jobs.in_flight_statement(now_ms / 1000, 1_000_000)
    assert 0 < expected < n
    assert conn.execute(statement.sql, statement.params).fetchone()[0] == expected
    capped = jobs.in_flight_statement(now_ms / 1000, 7)
    assert conn.execute(capped.sql, capped.params).fetchone()[0] == 7  # read no further than the cap


def test_the_count_reads_migration_0007_s_index_alone(conn) -> None:
    statement = jobs.in_flight_statement(1_800_000_000.0, 1_000)
    plan = " ".join(str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + statement.sql, statement.params))
    assert "USING COVERING INDEX jobs_in_flight (created_at_ms>?)" in plan
    admit = jobs.insert_statement(jobs.NewJob(id="a" * 32, stack="s", workflow_id="w", workflow_version="v",
                                              inputs={}, trace_id="t", created_at_s=1_800_000_000.0,
                                              worker_image_tag=None, max_in_flight=1_000), held_by=("s", "k"))
    plan = " ".join(str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + admit.sql, admit.params))
    assert "USING COVERING INDEX jobs_in_flight (created_at_ms>?)" in plan and "SCAN jobs" not in plan


def test_creates_racing_on_one_event_loop_never_get_past_the_cap(svc) -> None:
    # Every create's handler runs up to its database write before any write of theirs is committed (the local
    # adapter commits a group at once): a count read apart from its INSERT would admit every one of them.
    _cap(svc, 5)
    svc.create("already in flight")

    async def burst(n: int, keys: bool) -> list[int]:
        def request(i: int) -> Request:
            headers = {"authorization": f"Bearer {API_TOKEN}", **({"idempotency-key": f"k{i}"} if keys else {})}
            body = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": f"race {i} {keys}"}}
            return Request("POST", "/api/queue/create", "", headers, json.dumps(body).encode())

        return [r.status for r in await asyncio.gather(*(svc.app.handle(request(i)) for i in range(n)))]

    statuses = svc.run(burst(20, keys=False))
    assert statuses.count(202) == 4 and statuses.count(429) == 16
    assert _count(svc) == 5 and len(svc.fake.runs) == 5
    first = svc.rows("SELECT id FROM jobs ORDER BY created_at_ms, rowid LIMIT 1")[0]["id"]
    assert svc.deliver(first, _failed(svc, first))[0] == 200

    statuses = svc.run(burst(20, keys=True))  # with Idempotency-Keys: one batch of key and job each

    assert statuses.count(202) == 1 and statuses.count(429) == 19
    assert _count(svc) == 6 and _count(svc, "idempotency_keys") == 1 and len(svc.fake.runs) == 6


CAP = 12
THREADS = 16


def _burst(url: str, requests: int, keys: bool = False) -> list[int]:
    """`THREADS` clients, released together, `requests` creates in all: the statuses they got."""
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def client(n: int) -> None:
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {API_TOKEN}"}, timeout=30) as http:
            start.wait()
            for i in range(n, requests, THREADS):
                headers = {"idempotency-key": f"k-{i}"} if keys else {}
                body = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": f"burst {i} {keys}"}}
                status = http.post("/api/queue/create", json=body, headers=headers).status_code
                with lock:
                    statuses.append(status)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_concurrent_creates_on_the_local_server_never_get_past_the_cap(tmp_path, moto_endpoint, fake_runpod) -> None:
    server = LocalServer(tmp_path, moto_endpoint, fake_runpod.base, max_jobs_in_flight=CAP).start()
    try:
        first = _burst(server.url, 5 * THREADS)  # from empty: many more creates than places
        assert sorted(set(first)) == [202, 429] and first.count(202) == CAP
        db = sqlite3.connect(server.db_path)
        db.execute("UPDATE jobs SET status = 'completed' WHERE rowid = (SELECT MIN(rowid) FROM jobs)")
        db.commit()
        at_cap_less_one = _burst(server.url, THREADS, keys=True)  # one place: THREADS creates race for it
        assert at_cap_less_one.count(202) == 1 and at_cap_less_one.count(429) == THREADS - 1
        in_flight = db.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'in_progress')").fetchone()[0]
        keys = db.execute("SELECT COUNT(*) FROM idempotency_keys").fetchone()[0]
        db.close()
    finally:
        server.stop()
    assert in_flight == CAP and keys == 1  # the refused creates' keys stayed free
    assert len(fake_runpod.runs) == CAP + 1  # one /run per job written, none for a refused create
    lines = [json.loads(line) for line in server.log_lines()]
    assert sum(line["event"] == "job.queue_full" for line in lines) == first.count(429) + THREADS - 1


def test_the_worker_over_d1_keeps_the_same_cap(entry, tmp_path, fake_runpod) -> None:
    env = make_env(tmp_path, fake_runpod.base, MAX_JOBS_IN_FLIGHT="2")
    fetch = Fetch()
    worker = entry.Default(Ctx(), env)
    entry.Default._app = entry.build_app(env, fetch=fetch)
    assert entry.Default._app.config.max_jobs_in_flight == 2  # the Worker's var, read as a number

    async def create(prompt: str, key: str | None = None) -> Any:
        headers = {"authorization": f"Bearer {API_TOKEN}", **({"idempotency-key": key} if key else {})}
        body = json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": prompt}}).encode()
        return await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", body, headers))

    async def scenario() -> list[Any]:
        return [await create("a"), await create("b", key="kb"), await create("c"), await create("d", key="kd")]

    answers = asyncio.run(scenario())

    assert [a.status for a in answers] == [202, 202, 429, 429]
    refused = json.loads(answers[3].body)["error"]
    assert refused["code"] == "queue_full" and dict(answers[3].headers)["retry-after"] == "30"
    assert env.DB.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 2 and len(fetch.calls) == 2
    assert [r[0] for r in env.DB.conn.execute("SELECT idempotency_key FROM idempotency_keys")] == ["kb"]
