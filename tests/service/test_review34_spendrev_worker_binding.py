"""The API Worker's DAILY_SPEND_LIMIT_USD binding, hand-edited to something that is no limit (a typo, "0", "nan", an
amount over the maximum, an empty value): the Worker goes on serving every route (creates, webhooks, status), with no
daily spend limit, and its isolate's first request says so on one warning line (`service.spend_limit_ignored`) naming
the binding and what it holds. Refusing every request as misconfigured, as before, stopped the creates and, worse,
the webhooks of the jobs in flight: their outcomes were lost after RunPod's retries while their GPU time was billed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from service_testkit import API_TOKEN, WEBHOOK_SECRET
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, entry, make_env  # noqa: F401 (entry is a fixture)

from service.signing import webhook_signature

AUTH = {"authorization": f"Bearer {API_TOKEN}"}
CREATE = json.dumps({"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode()


def _served(entry: Any, env: Any) -> tuple[int, int, int]:  # noqa: F811 (the module, not the fixture)
    """(create, webhook, status) answers of a Worker over `env`, built on its first request as in production."""
    entry.Default._app = None
    worker = entry.Default(Ctx(), env)

    async def scenario() -> tuple[int, int, int]:
        # the runtime's first request builds the app (Default.fetch), with the real fetch stood in for
        entry.Default._app = entry.build_app(env, fetch=Fetch())
        created = await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", CREATE, AUTH))
        if created.status != 202:
            return created.status, 0, 0
        job_id = json.loads(created.body)["job_id"]
        rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
        body = json.dumps({"id": rid, "status": "FAILED", "executionTime": 1001, "error": "oom"}).encode()
        url = f"https://api.example/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}"
        hook = await worker.fetch(JsRequest("POST", url, body))
        status = await worker.fetch(JsRequest("GET", f"https://api.example/api/status/{job_id}", b"", AUTH))
        return created.status, hook.status, status.status

    return asyncio.run(scenario())


@pytest.mark.parametrize("value", ["250$", "1,000", "0", "-5", "nan", "inf", "1e309", "2000000", "", " ", "x" * 5000])
def test_a_binding_that_holds_no_limit_serves_every_route_and_says_so_once(
        entry, tmp_path, fake_runpod, capsys, log_lines, value: str) -> None:  # noqa: F811
    env = make_env(tmp_path, fake_runpod.base, DAILY_SPEND_LIMIT_USD=value)
    assert _served(entry, env) == (202, 200, 200)
    assert env.DB.conn.execute("SELECT jobs FROM daily_spend").fetchall() == [(1,)]  # still counted
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    ignored = [line for line in lines if line["event"] == "service.spend_limit_ignored"]
    assert len(ignored) == 1 and ignored[0]["level"] == "warning", lines
    assert "DAILY_SPEND_LIMIT_USD" in ignored[0]["message"] and "no daily spend limit" in ignored[0]["message"]
    assert ignored[0]["data"]["binding"] == "DAILY_SPEND_LIMIT_USD"
    assert ignored[0]["data"]["value"] == value[:64]  # what it holds, cut short: no secret, but no 5,000 characters
    assert not any(line["event"] == "service.misconfigured" for line in lines)
    log_lines.extend(json.dumps(line) for line in lines)  # validated against the schema at teardown


@pytest.mark.parametrize(("value", "limit"), [("250", 250.0), (" 0.5 ", 0.5), ("1e3", 1000.0)])
def test_a_binding_that_holds_a_limit_is_the_limit_and_logs_nothing(
        entry, tmp_path, capsys, value: str, limit: float) -> None:  # noqa: F811
    env = make_env(tmp_path, "http://127.0.0.1:9/v2/ep", DAILY_SPEND_LIMIT_USD=value)
    assert entry.config_from_env(env).daily_spend_limit_usd == limit
    entry.build_app(env, fetch=Fetch())
    assert "service.spend_limit_ignored" not in capsys.readouterr().out


def test_no_binding_is_no_limit_and_logs_nothing(entry, tmp_path, capsys) -> None:  # noqa: F811
    env = make_env(tmp_path, "http://127.0.0.1:9/v2/ep")
    assert entry.config_from_env(env).daily_spend_limit_usd is None
    entry.build_app(env, fetch=Fetch())
    assert "service.spend_limit_ignored" not in capsys.readouterr().out
