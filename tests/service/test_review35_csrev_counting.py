"""Review of each named client's own daily spend (api.client_daily_spend_limit_usd): a client's job that RunPod
refused at /run is marked failed and counted on the stack's day as a job at no cost; its client's day counts it alike,
so GET /api/metrics' `clients` agrees with the stack's figures and with migration 0011's backfill (which counts every
ended job of a client), and a late webhook of RunPod's for it (it took the job after all) adds its cost to a row that
already holds the job. The core App over SQLite, moto's S3 and the fake RunPod, its clock a test's."""

from __future__ import annotations

from typing import Any

import pytest
from service_testkit import API_TOKEN
from test_review34_spend_routes import DAY, stack  # noqa: F401 (stack: a fixture)
from test_review35_cspend_routes import ALICE, _client_spend, _create, _stack


def _clients_today(svc: Any) -> list[dict[str, Any]]:
    status, report, _ = svc.call("GET", "/api/metrics")
    assert status == 200, report
    return report["daily_spend"]["clients"]


def test_a_clients_job_runpod_refused_counts_as_its_job_at_no_cost(stack, fake_runpod) -> None:  # noqa: F811
    svc = _stack(stack)
    fake_runpod.run_mode = "refuse"
    status, body, _ = _create(svc, ALICE)
    assert status == 502, body
    assert svc.rows("SELECT jobs FROM daily_spend")[0]["jobs"] == 1
    assert _client_spend(svc) == {(DAY, "alice"): (0.0, 1)}
    assert _clients_today(svc) == [{"client": "alice", "spend_usd": 0.0, "jobs": 1}]
    status, body, _ = _create(svc, API_TOKEN)  # the API token's refused job names no client
    assert status == 502, body
    assert _client_spend(svc) == {(DAY, "alice"): (0.0, 1)}


def test_runpods_late_outcome_for_a_refused_clients_job_adds_its_cost_to_the_job_counted(
        stack, fake_runpod) -> None:  # noqa: F811
    svc = _stack(stack)
    fake_runpod.run_mode = "refuse"
    job_id = _create(svc, ALICE)[1]["error"]["job_id"]
    status, body, _ = svc.deliver(job_id, {"id": "rp-took-it-after-all", "status": "FAILED", "executionTime": 4000,
                                           "error": "oom"})
    assert status == 200 and body["applied"], body
    assert _clients_today(svc) == [{"client": "alice", "spend_usd": pytest.approx(4 * 0.00031), "jobs": 1}]
