"""Gaps a mutation audit of the daily spend limit (service/spend.py, service/transitions.py, service/config.py) found:
a RunPod "in progress" delivery on a stack with a limit is applied like any other, the 429's amounts read as
dollars do (thousands separated, cents from $10 on), and the service config takes a limit only above 0 and up to its
ceiling, the ceiling itself included. The core App over SQLite, moto's S3 and the fake RunPod, through the API
token (a named client's 429 carries no amounts)."""

from __future__ import annotations

import pytest
from service_testkit import make_config
from test_review34_spend_routes import DAY, JOB_USD, START, _create, _finish, _spend, stack  # noqa: F401 (a fixture)

from service.config import MAX_DAILY_SPEND_LIMIT_USD, ConfigError, ServiceConfig


def test_an_in_progress_delivery_on_a_stack_with_a_limit_is_applied_and_its_ending_counted(stack) -> None:  # noqa: F811
    svc = stack()
    job_id = _create(svc)[1]["job_id"]
    status, body, _ = svc.deliver(job_id, {"id": svc.runpod_id(job_id), "status": "IN_PROGRESS", "delayTime": 700})
    assert status == 200 and body["applied"], body
    assert svc.call("GET", f"/api/status/{job_id}")[1]["status"] == "in_progress"
    assert _spend(svc) == {}  # nothing ended yet
    _finish(svc, job_id)
    assert _spend(svc) == {DAY: (pytest.approx(JOB_USD), 1)}


def _refused_message(svc, usd: float) -> str:
    svc.run(svc.db.execute("INSERT INTO daily_spend (day, usd, jobs) VALUES (?, ?, ?)", (DAY, usd, 40)))
    svc.clock[0] = START + 1
    status, body, _ = _create(svc)
    assert status == 429 and body["error"]["code"] == "spend_limit_reached", body
    return body["error"]["message"]


@pytest.mark.parametrize(("limit", "spent", "shown"), [
    (10.0, 10.5, ("estimated at $10.50,", "limit of $10.00 ")),
    (2500.0, 2612.5, ("estimated at $2,612.50,", "limit of $2,500.00 ")),
])
def test_the_refusal_shows_dollars_with_cents_and_thousands_separated(stack, limit, spent, shown) -> None:  # noqa: F811
    message = _refused_message(stack(daily_spend_limit_usd=limit), spent)
    for words in shown:
        assert words in message, message


def _config(limit: object) -> ServiceConfig:
    return make_config(daily_spend_limit_usd=limit)


def test_the_service_config_takes_the_ceiling_itself_and_refuses_zero() -> None:
    assert _config(MAX_DAILY_SPEND_LIMIT_USD).daily_spend_limit_usd == MAX_DAILY_SPEND_LIMIT_USD
    assert _config(0.01).daily_spend_limit_usd == 0.01
    for bad in (0, 0.0, -1, MAX_DAILY_SPEND_LIMIT_USD + 0.5, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="daily_spend_limit_usd must be a number of US dollars above 0"):
            _config(bad)
