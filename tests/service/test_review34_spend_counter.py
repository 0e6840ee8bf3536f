"""The day's spend (daily_spend, migration 0009) is exactly the sum of the job_metrics costs whatever RunPod sends:
duplicate, late, conflicting and retried outcomes, delivered at once. And the Cloudflare Worker entry, over the
stand-ins of its bindings (D1's batch), counts and refuses as the local service does."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from service_testkit import API_TOKEN, WEBHOOK_SECRET, Harness
from test_review34_spend_routes import DAY, START, stack  # noqa: F401 (stack is a fixture)
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, entry, make_env  # noqa: F401 (entry is a fixture)

from service.http import Request
from service.signing import webhook_signature


def _outcomes(svc: Harness, job_id: str, rng: random.Random) -> list[dict[str, Any]]:
    """What RunPod may send for a job: its progress, an ending (a second one after a /retry), each maybe twice."""
    rid = svc.runpod_id(job_id)
    endings = [svc.completed(job_id, [svc.put_result(job_id, f"{n}.png")], execution_ms=rng.randrange(0, 90_000))
               for n in range(2)]
    endings += [{"id": rid, "status": status, "executionTime": rng.randrange(0, 90_000), "error": "oom"}
                for status in ("FAILED", "TIMED_OUT")]
    endings.append({"id": rid, "status": "CANCELLED"})
    sent = [{"id": rid, "status": "IN_PROGRESS", "delayTime": 10, "executionTime": rng.randrange(0, 500)}]
    sent += rng.sample(endings, rng.randrange(1, 4))
    sent += rng.sample(sent, rng.randrange(0, len(sent)))  # duplicates
    rng.shuffle(sent)
    return sent


def _webhook(job_id: str, payload: dict[str, Any]) -> Request:
    return Request("POST", "/api/runpod/webhook", f"job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}",
                   {}, json.dumps(payload).encode())


@pytest.mark.parametrize("seed", range(6))
def test_the_days_spend_is_the_sum_of_the_metrics_rows_under_concurrent_deliveries(
        stack, seed: int) -> None:  # noqa: F811
    rng = random.Random(seed)
    svc = stack(daily_spend_limit_usd=None)
    job_ids = [svc.create(f"job {n}")["job_id"] for n in range(6)]
    deliveries = [_webhook(job_id, payload) for job_id in job_ids for payload in _outcomes(svc, job_id, rng)]
    rng.shuffle(deliveries)

    async def at_once() -> list[int]:
        return [response.status for response in await asyncio.gather(*map(svc.app.handle, deliveries))]

    statuses = svc.run(at_once())
    assert set(statuses) <= {200, 503}, statuses  # 503 contended: RunPod sends it again
    (row,) = svc.rows("SELECT day, usd, jobs FROM daily_spend")
    metrics = svc.rows("SELECT COUNT(*) AS n, TOTAL(cost_estimate_usd) AS usd FROM job_metrics")[0]
    assert row["day"] == DAY and row["jobs"] == metrics["n"]
    assert row["usd"] == pytest.approx(metrics["usd"], rel=1e-12, abs=1e-12)


def test_the_worker_entry_counts_the_spend_in_d1s_batch_and_refuses_at_the_limit(
        entry, tmp_path, fake_runpod, capsys) -> None:  # noqa: F811
    # GPU_TYPE NVIDIA L4, GPU_COUNT 2, PRICE_PER_GPU_SECOND 0.0005: a 1.001 s run costs 2 s x 2 GPUs = $0.002
    env = make_env(tmp_path, fake_runpod.base, DAILY_SPEND_LIMIT_USD="0.002")
    worker = entry.Default(Ctx(), env)
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    auth = {"authorization": f"Bearer {API_TOKEN}"}
    create = json.dumps({"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode()

    async def scenario() -> tuple[int, dict[str, Any], dict[str, Any]]:
        created = await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", create, auth))
        job_id = json.loads(created.body)["job_id"]
        rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
        key = f"results/{job_id}/0.png"
        env.RESULTS.put(key, b"\x89PNG data", "image/png")
        body = json.dumps({"id": rid, "status": "COMPLETED", "delayTime": 3, "executionTime": 1001,
                           "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 9}]}}).encode()
        url = f"https://api.example/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}"
        for _ in range(2):  # the second is a duplicate
            assert (await worker.fetch(JsRequest("POST", url, body))).status == 200
        refused = await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", create, auth))
        metrics = await worker.fetch(JsRequest("GET", "https://api.example/api/metrics", b"", auth))
        return refused.status, json.loads(refused.body), json.loads(metrics.body)

    status, refused, metrics = asyncio.run(scenario())
    assert env.DB.conn.execute("SELECT usd, jobs FROM daily_spend").fetchall() == [(pytest.approx(0.002), 1)]
    assert status == 429 and refused["error"]["code"] == "spend_limit_reached", refused
    assert env.DB.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1
    assert metrics["daily_spend"]["jobs"] == 1 and metrics["daily_spend"]["limit_usd"] == 0.002
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["event"] for line in lines].count("spend.limit_reached") == 1
