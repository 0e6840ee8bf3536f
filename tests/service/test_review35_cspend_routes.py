"""Each named client's own daily spend limit (api.client_daily_spend_limit_usd, service/spend.py): the estimated spend
of a client's jobs that ended on a UTC day is counted in its own row as their metrics rows are written, and once it
reaches the limit that client's creates are answered 429 `client_spend_limit_reached` until 00:00 UTC, nothing written
and no RunPod call, while every other client and the API token are served: one runaway client stops itself, not every
client. The core App over SQLite, moto's S3 and the fake RunPod, its clock a test's."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from typing import Any

import pytest
from service_testkit import API_TOKEN, WEBHOOK_SECRET, Harness
from test_review34_spend_routes import DAY, JOB_USD, START, UNTIL_MIDNIGHT_S, stack  # noqa: F401 (stack: a fixture)

from service import transitions
from service.http import Request
from service.signing import webhook_signature

ALICE = "cli-alice-0123456789abcdefghijklmnopqrstuv"
BOB = "cli-bob-0123456789abcdefghijklmnopqrstuvwxyz"
HASHES = {"alice": hashlib.sha256(ALICE.encode()).hexdigest(), "bob": hashlib.sha256(BOB.encode()).hexdigest()}
CLIENT_LIMIT = 0.002  # reached by a client's third 2.5 s job (3 x $0.00093)


def _stack(stack: Any, **overrides: Any) -> Harness:  # noqa: F811
    return stack(**{"daily_spend_limit_usd": None, "client_daily_spend_limit_usd": CLIENT_LIMIT,
                    "client_tokens": HASHES, **overrides})


def _create(svc: Harness, token: str, prompt: str = "a lighthouse", key: str | None = None
            ) -> tuple[int, Any, dict[str, str]]:
    return svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": prompt}},
                    token=token, headers={"idempotency-key": key} if key else None)


def _finish(svc: Harness, job_id: str, execution_ms: int = 2500) -> None:
    status, body, _ = svc.deliver(job_id, svc.completed(job_id, [svc.put_result(job_id)], execution_ms=execution_ms))
    assert status == 200 and body["applied"], body


def _spend_to_its_limit(svc: Harness, token: str) -> list[str]:
    done = []
    for n in range(3):
        status, body, _ = _create(svc, token, prompt=f"job {n}")
        assert status == 202, body
        _finish(svc, body["job_id"])
        done.append(body["job_id"])
    return done


def _client_spend(svc: Harness) -> dict[tuple[str, str], tuple[float, int]]:
    rows = svc.rows("SELECT day, client, usd, jobs FROM client_daily_spend ORDER BY day, client")
    return {(row["day"], row["client"]): (row["usd"], row["jobs"]) for row in rows}


def _events(log_lines: Any, event: str) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, log_lines) if line["event"] == event]


def _count(svc: Harness, table: str) -> int:
    return svc.rows(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]


def test_a_client_at_its_own_limit_is_refused_while_the_other_client_and_the_api_token_are_served(
        stack, fake_runpod, log_lines) -> None:  # noqa: F811
    svc = _stack(stack)
    _spend_to_its_limit(svc, ALICE)
    before = (_count(svc, "jobs"), _count(svc, "idempotency_keys"), len(fake_runpod.runs))
    svc.clock[0] = START + 0.25
    status, body, headers = _create(svc, ALICE, key="never-taken")
    assert status == 429 and body["error"]["code"] == "client_spend_limit_reached", body
    assert headers["retry-after"] == str(UNTIL_MIDNIGHT_S)
    message = body["error"]["message"]
    for words in ("your own daily spend limit", "client alice", "$0.00279", "limit of $0.002", DAY,
                  "2027-01-16T00:00:00Z"):
        assert words in message, message
    assert (_count(svc, "jobs"), _count(svc, "idempotency_keys"), len(fake_runpod.runs)) == before
    (refusal,) = _events(log_lines, "job.client_spend_limit_reached")
    assert refusal["level"] == "warning" and refusal["data"]["client"] == "alice"
    assert refusal["data"]["spend_usd"] == pytest.approx(3 * JOB_USD) and refusal["data"]["limit_usd"] == CLIENT_LIMIT
    assert _create(svc, BOB)[0] == 202
    assert _create(svc, API_TOKEN)[0] == 202
    # at midnight alice's day starts again
    svc.clock[0] = START + UNTIL_MIDNIGHT_S
    assert _create(svc, ALICE)[0] == 202


def test_a_retry_of_a_create_that_was_taken_still_gets_its_job_at_the_clients_limit(stack) -> None:  # noqa: F811
    svc = _stack(stack)
    status, taken, _ = _create(svc, ALICE, prompt="kept", key="order-7")
    assert status == 202
    _spend_to_its_limit(svc, ALICE)
    status, replay, headers = _create(svc, ALICE, prompt="kept", key="order-7")
    assert status == 202 and replay["job_id"] == taken["job_id"], replay
    assert headers.get("idempotent-replayed") == "true"
    assert _create(svc, ALICE, prompt="new", key="order-8")[0] == 429


def test_the_api_tokens_jobs_count_against_no_client_and_it_is_never_refused_by_the_clients_limit(
        stack) -> None:  # noqa: F811
    svc = _stack(stack)
    for n in range(4):
        _finish(svc, _create(svc, API_TOKEN, prompt=f"job {n}")[1]["job_id"])
    assert _client_spend(svc) == {}
    assert _create(svc, API_TOKEN)[0] == 202 and _create(svc, ALICE)[0] == 202


def test_the_stacks_limit_is_checked_as_well_and_either_refuses(stack) -> None:  # noqa: F811
    svc = _stack(stack, daily_spend_limit_usd=0.0025, client_daily_spend_limit_usd=1.0)
    _spend_to_its_limit(svc, BOB)  # $0.00279: the stack's limit, not bob's own
    status, body, _ = _create(svc, ALICE)
    assert status == 429 and body["error"]["code"] == "spend_limit_reached", body
    both = _stack(stack, daily_spend_limit_usd=0.0025)
    status, body, _ = _create(both, BOB)  # its own limit and the stack's: its own, with its figures
    assert status == 429 and body["error"]["code"] == "client_spend_limit_reached", body


def test_each_clients_row_counts_its_own_jobs_once_whatever_runpod_sends(stack) -> None:  # noqa: F811
    svc = _stack(stack)
    alice = _create(svc, ALICE, prompt="a")[1]["job_id"]
    bob = _create(svc, BOB, prompt="b")[1]["job_id"]
    _create(svc, API_TOKEN)
    payload = svc.completed(alice, [svc.put_result(alice)])
    for _ in range(3):
        assert svc.deliver(alice, payload)[0] == 200
    svc.deliver(alice, {"id": svc.runpod_id(alice), "status": "IN_PROGRESS", "executionTime": 900})  # late
    svc.deliver(alice, {"id": svc.runpod_id(alice), "status": "FAILED", "executionTime": 9000})  # conflicting
    svc.deliver(bob, {"id": svc.runpod_id(bob), "status": "FAILED", "executionTime": 4000, "error": "oom"})
    assert _client_spend(svc) == {(DAY, "alice"): (pytest.approx(JOB_USD), 1),
                                  (DAY, "bob"): (pytest.approx(4 * 0.00031), 1)}


def _webhook(job_id: str, payload: dict[str, Any]) -> Request:
    return Request("POST", "/api/runpod/webhook", f"job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}",
                   {}, json.dumps(payload).encode())


@pytest.mark.parametrize("seed", range(4))
def test_the_clients_rows_are_the_sum_of_their_jobs_metrics_under_concurrent_deliveries(
        stack, seed: int) -> None:  # noqa: F811
    from test_review34_spend_counter import _outcomes

    rng = random.Random(seed)
    svc = _stack(stack)
    tokens = [ALICE, BOB, API_TOKEN]
    job_ids = [_create(svc, tokens[n % 3], prompt=f"job {n}")[1]["job_id"] for n in range(6)]
    deliveries = [_webhook(job_id, payload) for job_id in job_ids for payload in _outcomes(svc, job_id, rng)]
    rng.shuffle(deliveries)

    async def at_once() -> list[int]:
        return [response.status for response in await asyncio.gather(*map(svc.app.handle, deliveries))]

    assert set(svc.run(at_once())) <= {200, 503}
    expected = svc.rows("SELECT j.client, COUNT(*) AS n, TOTAL(m.cost_estimate_usd) AS usd FROM job_metrics AS m "
                        "JOIN jobs AS j ON j.id = m.job_id WHERE j.client IS NOT NULL GROUP BY j.client")
    got = _client_spend(svc)
    assert set(got) == {(DAY, row["client"]) for row in expected}
    for row in expected:
        usd, jobs = got[(DAY, row["client"])]
        assert jobs == row["n"] and usd == pytest.approx(row["usd"], rel=1e-12, abs=1e-12)


def test_the_crossing_is_logged_once_per_client_by_the_ending_that_took_it_there(
        stack, log_lines) -> None:  # noqa: F811
    svc = _stack(stack)
    alice = [_create(svc, ALICE, prompt=f"a{n}")[1]["job_id"] for n in range(5)]  # in flight before the crossing
    for job_id in alice:
        _finish(svc, job_id)
    bob = _spend_to_its_limit(svc, BOB)
    lines = _events(log_lines, "spend.client_limit_reached")
    assert [(line["data"]["client"], line["job_id"]) for line in lines] == [("alice", alice[2]), ("bob", bob[2])]
    assert lines[0]["level"] == "warning"
    assert lines[0]["data"] == {"client": "alice", "day": DAY, "spend_usd": pytest.approx(3 * JOB_USD),
                                "limit_usd": CLIENT_LIMIT}
    assert not _events(log_lines, "spend.limit_reached")  # the stack has no limit of its own here


def test_the_metrics_report_shows_each_clients_spend_today_biggest_first_and_the_limit(stack) -> None:  # noqa: F811
    svc = _stack(stack)
    _finish(svc, _create(svc, BOB)[1]["job_id"])
    _finish(svc, _create(svc, ALICE)[1]["job_id"], execution_ms=9000)
    _finish(svc, _create(svc, API_TOKEN)[1]["job_id"])
    status, report, _ = svc.call("GET", "/api/metrics")
    assert status == 200
    today = report["daily_spend"]
    assert today["client_limit_usd"] == CLIENT_LIMIT and today["jobs"] == 3
    assert today["clients"] == [{"client": "alice", "spend_usd": pytest.approx(9 * 0.00031), "jobs": 1},
                                {"client": "bob", "spend_usd": pytest.approx(JOB_USD), "jobs": 1}]
    assert svc.call("GET", "/api/metrics", token=ALICE)[0] == 403  # the operator's


def test_a_job_of_the_api_token_costs_no_statement_more_when_it_ends(stack) -> None:  # noqa: F811
    svc = _stack(stack)
    job_id = _create(svc, API_TOKEN)[1]["job_id"]
    job = svc.rows(transitions.READ_JOB, ("x", job_id))[0]
    delivery = transitions.parse_delivery({"id": svc.runpod_id(job_id), "status": "FAILED", "executionTime": 1000})
    pricing = transitions.Pricing("NVIDIA GeForce RTX 4090", 1, None, None)
    batch = transitions.write_statements(job, delivery, "f", "webhook", ("failed", "oom", None), START, pricing)
    assert len(batch) == 4 and not any("client_daily_spend" in s.sql for s in batch)
    client_job = {**job, "client": "alice"}
    with_client = transitions.write_statements(client_job, delivery, "f", "webhook", ("failed", "oom", None), START,
                                               pricing)
    assert [s.sql for s in with_client if "client_daily_spend" in s.sql] and len(with_client) == 5
