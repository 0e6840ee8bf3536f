"""The Cloudflare Worker entry, over the stand-ins of its bindings (D1's batch), with each named client's own daily
spend limit (its CLIENT_DAILY_SPEND_LIMIT_USD binding): a client's jobs are counted in its own row in the batch that
writes their metrics, a client at its limit is refused 429 `client_spend_limit_reached` while the other client and
the API token are served, its create reading both days' rows in one D1 call; the crossing is logged once. A binding
hand-edited to something that is no limit is set aside: the Worker serves on without it and says so once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from service_testkit import API_TOKEN, WEBHOOK_SECRET
from test_review35_cspend_routes import ALICE, BOB, HASHES
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, entry, make_env  # noqa: F401 (entry is a fixture)

from service.signing import webhook_signature

BASE = "https://api.example"


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _lines(capsys: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


async def _create(worker: Any, token: str) -> Any:
    body = json.dumps({"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode()
    return await worker.fetch(JsRequest("POST", f"{BASE}/api/queue/create", body, _auth(token)))


async def _fail(worker: Any, env: Any, job_id: str, execution_ms: int) -> None:
    rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
    body = json.dumps({"id": rid, "status": "FAILED", "executionTime": execution_ms, "error": "oom"}).encode()
    url = f"{BASE}/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}"
    assert (await worker.fetch(JsRequest("POST", url, body))).status == 200


def test_the_worker_counts_a_clients_spend_in_d1s_batch_and_refuses_that_client_alone(
        entry, tmp_path, fake_runpod, capsys, log_lines) -> None:  # noqa: F811
    # GPU_TYPE NVIDIA L4, GPU_COUNT 2, PRICE_PER_GPU_SECOND 0.0005: a 1.001 s run bills 2 s x 2 GPUs = $0.002
    env = make_env(tmp_path, fake_runpod.base, CLIENT_TOKENS=json.dumps(HASHES), CLIENT_DAILY_SPEND_LIMIT_USD="0.002")
    worker = entry.Default(Ctx(), env)
    entry.Default._app = entry.build_app(env, fetch=Fetch())

    async def scenario() -> tuple[Any, list[tuple[str, str]], int, int]:
        created = await _create(worker, ALICE)
        job_id = json.loads(created.body)["job_id"]
        for _ in range(2):  # the second is a duplicate
            await _fail(worker, env, job_id, 1001)
        calls_before = len(env.DB.calls)
        refused = await _create(worker, ALICE)
        reads = env.DB.calls[calls_before:]
        return refused, reads, (await _create(worker, BOB)).status, (await _create(worker, API_TOKEN)).status

    refused, reads, bob, operator = asyncio.run(scenario())
    assert env.DB.conn.execute("SELECT client, usd, jobs FROM client_daily_spend").fetchall() == [
        ("alice", pytest.approx(0.002), 1)]
    assert refused.status == 429, refused.body
    assert json.loads(refused.body)["error"]["code"] == "client_spend_limit_reached"
    assert len(reads) == 1, reads  # the stack's day and the client's, in one statement
    assert (bob, operator) == (202, 202)
    lines = _lines(capsys)
    crossings = [line for line in lines if line["event"] == "spend.client_limit_reached"]
    assert len(crossings) == 1 and crossings[0]["data"]["client"] == "alice", crossings
    log_lines.extend(json.dumps(line) for line in lines)  # validated against the schema at teardown


@pytest.mark.parametrize("value", ["50$", "0", "-5", "nan", "2000000", "", "x" * 5000])
def test_a_client_limit_binding_that_holds_no_limit_is_set_aside_and_said_once(
        entry, tmp_path, fake_runpod, capsys, log_lines, value: str) -> None:  # noqa: F811
    env = make_env(tmp_path, fake_runpod.base, CLIENT_TOKENS=json.dumps(HASHES), CLIENT_DAILY_SPEND_LIMIT_USD=value,
                   DAILY_SPEND_LIMIT_USD="250")
    assert entry.config_from_env(env).client_daily_spend_limit_usd is None
    assert entry.config_from_env(env).daily_spend_limit_usd == 250.0  # the stack's own stands
    entry.Default._app = None
    worker = entry.Default(Ctx(), env)

    async def scenario() -> list[int]:
        entry.Default._app = entry.build_app(env, fetch=Fetch())
        return [(await _create(worker, token)).status for token in (ALICE, ALICE, API_TOKEN)]

    assert asyncio.run(scenario()) == [202, 202, 202]
    lines = _lines(capsys)
    ignored = [line for line in lines if line["event"] == "service.spend_limit_ignored"]
    assert len(ignored) == 1 and ignored[0]["level"] == "warning", ignored
    assert ignored[0]["data"] == {"binding": "CLIENT_DAILY_SPEND_LIMIT_USD", "value": value[:64]}
    assert "api.client_daily_spend_limit_usd" in ignored[0]["message"]
    log_lines.extend(json.dumps(line) for line in lines)


def test_a_client_limit_binding_that_holds_a_limit_is_the_limit(entry, tmp_path, capsys) -> None:  # noqa: F811
    env = make_env(tmp_path, "http://127.0.0.1:9/v2/ep", CLIENT_DAILY_SPEND_LIMIT_USD=" 12.5 ")
    assert entry.config_from_env(env).client_daily_spend_limit_usd == 12.5
    entry.build_app(env, fetch=Fetch())
    assert "service.spend_limit_ignored" not in capsys.readouterr().out
