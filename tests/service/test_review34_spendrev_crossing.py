"""`spend.limit_reached` is logged once a day, by the ending that took the day's spend from under the limit to at or
over it, judged on the day's row as the batch read it before and after its add: never again for a job ending after
the crossing because subtracting its cost from the new total lands a hair under the limit (floating point:
$0.00093 + $0.00093 is exactly a limit of $0.00186, but ($0.00186 + $0.00093) - $0.00093 is not), and never for a
job whose ending leaves a day already over the limit. The core App over SQLite, its clock a test's, and the Worker
entry over the stand-ins of its bindings (D1's batch)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from service_testkit import API_TOKEN, WEBHOOK_SECRET
from test_review34_spend_routes import DAY, JOB_USD, _create, _finish, _spend, stack  # noqa: F401 (stack: a fixture)
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, entry, make_env  # noqa: F401 (entry is a fixture)

from service.signing import webhook_signature


def _crossings(log_lines: Any) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, log_lines) if line["event"] == "spend.limit_reached"]


def test_a_day_that_lands_exactly_on_the_limit_logs_the_crossing_once(stack, log_lines) -> None:  # noqa: F811
    limit = JOB_USD + JOB_USD  # what the day's row holds after two such jobs, to the last bit
    svc = stack(daily_spend_limit_usd=limit)
    jobs = [_create(svc, prompt=f"job {n}")[1]["job_id"] for n in range(4)]  # all in flight before the crossing
    for job_id in jobs:
        _finish(svc, job_id)
    assert _spend(svc)[DAY][1] == 4
    lines = _crossings(log_lines)
    assert [line["job_id"] for line in lines] == [jobs[1]], lines
    assert lines[0]["data"] == {"day": DAY, "spend_usd": limit, "limit_usd": limit}


def test_endings_after_the_crossing_log_nothing_whatever_their_cost(stack, log_lines) -> None:  # noqa: F811
    svc = stack(daily_spend_limit_usd=0.0025)
    jobs = [_create(svc, prompt=f"job {n}")[1]["job_id"] for n in range(8)]
    for n, job_id in enumerate(jobs):
        _finish(svc, job_id, execution_ms=1000 * (n % 3) + 500)  # 1, 2 or 3 billed seconds
    assert len(_crossings(log_lines)) == 1


def test_the_worker_over_d1_logs_the_crossing_once_when_the_day_lands_on_the_limit(
        entry, tmp_path, fake_runpod, capsys, log_lines) -> None:  # noqa: F811
    # GPU_TYPE NVIDIA L4, GPU_COUNT 2, PRICE_PER_GPU_SECOND 0.0005: a 4.001 s run bills 5 s x 2 GPUs = $0.005, so the
    # second job's ending takes the day to $0.01 exactly, and ($0.01 + $0.005) - $0.005 is $0.009999999999999998
    env = make_env(tmp_path, fake_runpod.base, DAILY_SPEND_LIMIT_USD="0.01")
    worker = entry.Default(Ctx(), env)
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    auth = {"authorization": f"Bearer {API_TOKEN}"}
    create = json.dumps({"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode()

    async def scenario() -> list[str]:
        made = []
        for _ in range(3):  # all in flight before the crossing
            created = await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", create, auth))
            made.append(json.loads(created.body)["job_id"])
        for job_id in made:
            rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
            body = json.dumps({"id": rid, "status": "FAILED", "executionTime": 4001, "error": "oom"}).encode()
            url = (f"https://api.example/api/runpod/webhook?job={job_id}"
                   f"&sig={webhook_signature(WEBHOOK_SECRET, job_id)}")
            assert (await worker.fetch(JsRequest("POST", url, body))).status == 200
        return made

    made = asyncio.run(scenario())
    assert env.DB.conn.execute("SELECT jobs FROM daily_spend").fetchall() == [(3,)]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    crossings = [line for line in lines if line["event"] == "spend.limit_reached"]
    assert [line["job_id"] for line in crossings] == [made[1]], crossings
    log_lines.extend(json.dumps(line) for line in lines)
