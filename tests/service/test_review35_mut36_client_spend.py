"""Each named client's own daily spend limit beside the stack's, where session 35's mutation audit found nothing
holding it: with both limits set, a client's crossing of its own is logged once with its own figures (its batch reads
the stack's row too, before the client's); a client refused at the stack's limit waits as long as the operator's
Retry-After says; and a Worker binding of the client limit that holds none says the client's own limit is set aside,
not the stack's. The core App over SQLite, moto's S3 and the fake RunPod; the Worker entry over its bindings'
stand-ins."""

from __future__ import annotations

import json
import sqlite3

import pytest
from test_review34_spend_routes import DAY, JOB_USD, UNTIL_MIDNIGHT_S, stack  # noqa: F401 (stack: a fixture)
from test_review35_cspend_routes import (
    ALICE,
    BOB,
    CLIENT_LIMIT,
    _create,
    _events,
    _finish,
    _spend_to_its_limit,
    _stack,
)
from test_service_cloudflare_entry import Fetch, entry, make_env  # noqa: F401 (entry is a fixture)


def test_with_the_stacks_limit_too_a_clients_crossing_is_logged_once_with_its_own_figures(
        stack, log_lines) -> None:  # noqa: F811
    svc = _stack(stack, daily_spend_limit_usd=1.0)  # far above: the stack's row is read and added, never crossed
    _finish(svc, _create(svc, BOB, prompt="bob's")[1]["job_id"])  # the stack's day is ahead of alice's own
    alice = _spend_to_its_limit(svc, ALICE)
    lines = _events(log_lines, "spend.client_limit_reached")
    assert [(line["data"]["client"], line["job_id"]) for line in lines] == [("alice", alice[2])], lines
    assert lines[0]["data"] == {"client": "alice", "day": DAY, "spend_usd": pytest.approx(3 * JOB_USD),
                                "limit_usd": CLIENT_LIMIT}
    assert not _events(log_lines, "spend.limit_reached")
    status, body, _ = _create(svc, ALICE, prompt="one more")
    assert status == 429 and body["error"]["code"] == "client_spend_limit_reached", body
    (refused,) = _events(log_lines, "job.client_spend_limit_reached")
    assert refused["data"]["client"] == "alice" and refused["data"]["spend_usd"] == pytest.approx(3 * JOB_USD), refused


def test_a_clients_create_is_judged_by_todays_stack_spend_not_another_days(stack, db_path) -> None:  # noqa: F811
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("INSERT INTO daily_spend (day, usd, jobs) VALUES ('2027-01-14', 5.0, 900)")  # yesterday, far over
    conn.close()
    svc = _stack(stack, daily_spend_limit_usd=0.0025, client_daily_spend_limit_usd=1.0)
    status, body, _ = _create(svc, ALICE)
    assert status == 202, body


def test_a_client_refused_at_the_stacks_limit_waits_until_midnight_as_the_operator_does(stack) -> None:  # noqa: F811
    svc = _stack(stack, daily_spend_limit_usd=0.0025, client_daily_spend_limit_usd=None)
    _spend_to_its_limit(svc, BOB)
    operator = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "p"}})
    client = _create(svc, ALICE)
    assert operator[0] == client[0] == 429 and client[1]["error"]["code"] == "spend_limit_reached", client[1]
    assert client[2]["retry-after"] == operator[2]["retry-after"] == str(UNTIL_MIDNIGHT_S)


def test_a_client_limit_binding_set_aside_says_the_clients_own_limit_not_the_stacks(
        entry, tmp_path, capsys) -> None:  # noqa: F811
    env = make_env(tmp_path, "http://127.0.0.1:9/v2/ep", CLIENT_DAILY_SPEND_LIMIT_USD="0", DAILY_SPEND_LIMIT_USD="250")
    entry.build_app(env, fetch=Fetch())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (ignored,) = [line for line in lines if line["event"] == "service.spend_limit_ignored"]
    assert "served with no client's own daily spend limit (api.client_daily_spend_limit_usd)" in ignored["message"]
    assert "served with no daily spend limit" not in ignored["message"]
