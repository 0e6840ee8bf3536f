"""The stack's daily spend limit (api.daily_spend_limit_usd, service/spend.py): the estimated spend of the jobs that
ended on a UTC day is counted as their metrics rows are written, and once it reaches the limit a create is answered
429 `spend_limit_reached` until 00:00 UTC, with nothing written and no RunPod call; every other route goes on, and jobs
in flight end and are counted. The core App over SQLite, moto's S3 and the fake RunPod, its clock a test's."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from service_testkit import BUCKET, RUNPOD_KEY, Harness, LogCapture, make_config
from test_review32_inputsvc_uploads import image_bytes

from service.app import create_app
from service.httpx_transport import HttpxTransport
from service.runpod import HttpRunPodGateway
from service.s3_store import S3ResultStore
from service.sqlite_database import SqliteDatabase

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z
DAY = "2027-01-15"
UNTIL_MIDNIGHT_S = 16 * 3600
# A 2.5 s run on the test stack's GPU (an RTX 4090, billed by the whole second): 3 s of $0.00031.
JOB_USD = 3 * 0.00031
LIMIT = 0.002  # reached by the third such job


@pytest.fixture
def stack(db_path: Path, moto_endpoint: str, fake_runpod: Any, log_lines: LogCapture, s3: Any,
          _store_client: Any) -> Iterator[Callable[..., Harness]]:
    """A factory of the core App with a daily spend limit (`overrides` change its config), its clock at START."""
    made: list[tuple[Harness, HttpxTransport]] = []

    def make(**overrides: Any) -> Harness:
        config = make_config(runpod_endpoint_base=fake_runpod.base, db_path=str(db_path),
                             s3_endpoint_url=moto_endpoint, **{"daily_spend_limit_usd": LIMIT, **overrides})
        transport = HttpxTransport()
        gateway = HttpRunPodGateway(transport, fake_runpod.base, RUNPOD_KEY, timeout_s=5)
        clock = [START]
        app = create_app(config, SqliteDatabase(db_path), S3ResultStore(_store_client, BUCKET), gateway,
                         log_sink=log_lines.sink, clock=lambda: clock[0])
        harness = Harness(app, app.db, s3, fake_runpod, clock)
        made.append((harness, transport))
        return harness

    yield make
    for harness, transport in made:
        harness.run(transport.aclose())
        harness.loop.close()
        harness.db.close()


def _create(svc: Harness, key: str | None = None, prompt: str = "a lighthouse") -> tuple[int, Any, dict[str, str]]:
    return svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": prompt}},
                    headers={"idempotency-key": key} if key else None)


def _finish(svc: Harness, job_id: str, execution_ms: int = 2500) -> None:
    status, body, _ = svc.deliver(job_id, svc.completed(job_id, [svc.put_result(job_id)], execution_ms=execution_ms))
    assert status == 200 and body["applied"], body


def _spend(svc: Harness) -> dict[str, Any]:
    rows = svc.rows("SELECT day, usd, jobs FROM daily_spend ORDER BY day")
    return {row["day"]: (row["usd"], row["jobs"]) for row in rows}


def _metrics_sum(svc: Harness) -> float:
    return svc.rows("SELECT TOTAL(cost_estimate_usd) AS usd FROM job_metrics")[0]["usd"]


def _events(log_lines: LogCapture, event: str) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, log_lines) if line["event"] == event]


def _spend_up_to_the_limit(svc: Harness) -> list[str]:
    done = []
    for n in range(3):
        job_id = _create(svc, prompt=f"job {n}")[1]["job_id"]
        _finish(svc, job_id)
        done.append(job_id)
    return done


def test_each_ended_job_adds_its_cost_to_its_day(stack) -> None:
    svc = stack()
    first, second = (_create(svc, prompt=p)[1]["job_id"] for p in ("one", "two"))
    _finish(svc, first)
    assert _spend(svc) == {DAY: (pytest.approx(JOB_USD), 1)}
    svc.deliver(second, {"id": svc.runpod_id(second), "status": "FAILED", "executionTime": 4000, "error": "oom"})
    usd, jobs = _spend(svc)[DAY]
    assert jobs == 2 and usd == pytest.approx(_metrics_sum(svc)) and usd == pytest.approx(JOB_USD + 4 * 0.00031)


def test_a_cancelled_job_without_a_cost_counts_as_a_job_and_adds_nothing(stack) -> None:
    svc = stack()
    job_id = _create(svc)[1]["job_id"]
    assert svc.deliver(job_id, {"id": svc.runpod_id(job_id), "status": "CANCELLED"})[0] == 200
    assert svc.rows("SELECT cost_estimate_usd FROM job_metrics")[0]["cost_estimate_usd"] is None
    assert _spend(svc) == {DAY: (0.0, 1)}


def test_a_job_runpod_never_took_counts_as_a_job_at_no_cost(stack, fake_runpod) -> None:
    svc = stack()
    fake_runpod.run_mode = "refuse"
    status, body, _ = _create(svc)
    assert status == 502, body
    assert svc.rows("SELECT status FROM job_metrics")[0]["status"] == "failed"
    assert _spend(svc) == {DAY: (0.0, 1)}


def test_a_duplicate_or_late_webhook_never_counts_twice(stack) -> None:
    svc = stack()
    job_id = _create(svc)[1]["job_id"]
    payload = svc.completed(job_id, [svc.put_result(job_id)])
    for _ in range(3):
        assert svc.deliver(job_id, payload)[0] == 200
    svc.deliver(job_id, {"id": svc.runpod_id(job_id), "status": "IN_PROGRESS", "executionTime": 900})  # late
    svc.deliver(job_id, {"id": svc.runpod_id(job_id), "status": "FAILED", "executionTime": 9000})  # conflicting
    assert _spend(svc) == {DAY: (pytest.approx(JOB_USD), 1)}
    assert _spend(svc)[DAY][0] == pytest.approx(_metrics_sum(svc))


def test_a_retried_jobs_second_attempt_adds_its_own_cost_on_the_day_it_ended(stack) -> None:
    svc = stack()
    job_id = _create(svc)[1]["job_id"]
    svc.deliver(job_id, {"id": svc.runpod_id(job_id), "status": "FAILED", "executionTime": 4000, "error": "oom"})
    svc.clock[0] = START + UNTIL_MIDNIGHT_S + 60  # RunPod's /retry ran it again after midnight
    _finish(svc, job_id)
    assert _spend(svc) == {DAY: (pytest.approx(4 * 0.00031), 1), "2027-01-16": (pytest.approx(JOB_USD), 0)}
    assert sum(usd for usd, _ in _spend(svc).values()) == pytest.approx(_metrics_sum(svc))


def test_a_create_at_the_limit_is_refused_429_until_midnight_with_nothing_written(stack, fake_runpod,
                                                                                   log_lines) -> None:
    svc = stack()
    _spend_up_to_the_limit(svc)
    jobs_before, keys_before, runs_before = (svc.rows("SELECT COUNT(*) AS n FROM jobs")[0]["n"],
                                             svc.rows("SELECT COUNT(*) AS n FROM idempotency_keys")[0]["n"],
                                             len(fake_runpod.runs))
    svc.clock[0] = START + 0.25
    status, body, headers = _create(svc, key="never-taken")
    assert status == 429 and body["error"]["code"] == "spend_limit_reached", body
    assert headers["retry-after"] == str(UNTIL_MIDNIGHT_S)  # whole seconds, rounded up, to 00:00 UTC
    message = body["error"]["message"]
    for words in ("estimated at $0.00279", "limit of $0.002 ", "api.daily_spend_limit_usd", "2027-01-16T00:00:00Z",
                  DAY):
        assert words in message, message
    assert svc.rows("SELECT COUNT(*) AS n FROM jobs")[0]["n"] == jobs_before
    assert svc.rows("SELECT COUNT(*) AS n FROM idempotency_keys")[0]["n"] == keys_before
    assert len(fake_runpod.runs) == runs_before
    (line,) = _events(log_lines, "job.spend_limit_reached")
    assert (line["level"], line["reason"], line["job_id"]) == ("warning", "spend_limit_reached", None)
    assert line["data"]["limit_usd"] == LIMIT and line["data"]["spend_usd"] == pytest.approx(3 * JOB_USD)
    assert line["data"]["day"] == DAY and line["data"]["retry_after_s"] == UNTIL_MIDNIGHT_S


def test_retry_after_is_at_least_one_second_just_before_midnight(stack) -> None:
    svc = stack()
    _spend_up_to_the_limit(svc)
    svc.clock[0] = START + UNTIL_MIDNIGHT_S - 0.2
    status, _, headers = _create(svc)
    assert status == 429 and headers["retry-after"] == "1"


def test_a_retry_of_a_create_that_was_taken_still_gets_its_job(stack, fake_runpod) -> None:
    svc = stack()
    status, taken, _ = _create(svc, key="batch-7", prompt="job 0")
    assert status == 202
    _finish(svc, taken["job_id"])
    for n in (1, 2):
        _finish(svc, _create(svc, prompt=f"job {n}")[1]["job_id"])
    runs = len(fake_runpod.runs)
    status, body, headers = _create(svc, key="batch-7", prompt="job 0")
    assert status == 202 and body["job_id"] == taken["job_id"] and headers.get("idempotent-replayed") == "true"
    assert len(fake_runpod.runs) == runs
    assert _create(svc, key="batch-8", prompt="job 0")[0] == 429  # a new key is a new job: refused


def test_the_next_utc_day_takes_creates_again(stack) -> None:
    svc = stack()
    _spend_up_to_the_limit(svc)
    svc.clock[0] = START + UNTIL_MIDNIGHT_S - 1
    assert _create(svc)[0] == 429
    svc.clock[0] = START + UNTIL_MIDNIGHT_S
    status, body, _ = _create(svc)
    assert status == 202, body


def test_jobs_in_flight_end_and_every_other_route_answers_at_the_limit(stack) -> None:
    svc = stack()
    in_flight = _create(svc, prompt="in flight")[1]["job_id"]
    to_cancel = _create(svc, prompt="to cancel")[1]["job_id"]
    _spend_up_to_the_limit(svc)
    assert _create(svc)[0] == 429
    _finish(svc, in_flight)  # its webhook is applied and counted: the limit is soft by the jobs in flight
    assert _spend(svc)[DAY] == (pytest.approx(4 * JOB_USD), 4)
    assert svc.call("GET", f"/api/status/{in_flight}")[1]["status"] == "completed"
    # the kit's RunPod has no /cancel: its 409 is RunPod's answer, not a refusal for the spend
    cancel = svc.call("POST", f"/api/cancel/{to_cancel}")
    assert cancel[0] != 429 and cancel[1]["error"]["code"] != "spend_limit_reached", cancel
    upload = svc.call("POST", "/api/inputs", raw=image_bytes("image/png"), headers={"content-type": "image/png"})
    assert upload[0] == 201, upload
    assert svc.call("GET", "/api/metrics")[0] == 200


def test_the_crossing_is_logged_once_with_the_day_spend_and_limit(stack, log_lines) -> None:
    svc = stack()
    extra = _create(svc, prompt="ends after the crossing")[1]["job_id"]
    first, second, third = _spend_up_to_the_limit(svc)
    _finish(svc, extra)
    lines = _events(log_lines, "spend.limit_reached")
    assert len(lines) == 1, lines
    (line,) = lines
    assert (line["level"], line["job_id"], line["reason"]) == ("warning", third, "spend_limit_reached")
    assert line["data"] == {"day": DAY, "spend_usd": pytest.approx(3 * JOB_USD), "limit_usd": LIMIT}
    # a line of its own: the webhook's request line still names the job's ending
    assert [n["job_id"] for n in _events(log_lines, "job.finished")] == [first, second, third, extra]


def test_no_limit_counts_the_spend_and_refuses_nothing(stack, log_lines) -> None:
    svc = stack(daily_spend_limit_usd=None)
    _spend_up_to_the_limit(svc)
    assert _create(svc)[0] == 202
    assert _spend(svc)[DAY] == (pytest.approx(3 * JOB_USD), 3)
    assert not _events(log_lines, "spend.limit_reached")


def test_the_metrics_report_shows_todays_spend_and_the_limit(stack) -> None:
    svc = stack()
    _finish(svc, _create(svc)[1]["job_id"])
    status, report, _ = svc.call("GET", "/api/metrics", query="since=2020-01-01T00:00:00Z")
    assert status == 200
    assert report["daily_spend"] == {"day": DAY, "spend_usd": pytest.approx(JOB_USD), "jobs": 1, "limit_usd": LIMIT,
                                     "client_limit_usd": None, "clients": []}
    svc.clock[0] = START + 86_400
    assert svc.call("GET", "/api/metrics")[1]["daily_spend"] == {"day": "2027-01-16", "spend_usd": 0.0, "jobs": 0,
                                                                 "limit_usd": LIMIT, "client_limit_usd": None,
                                                                 "clients": []}
    unlimited = stack(daily_spend_limit_usd=None)
    assert unlimited.call("GET", "/api/metrics")[1]["daily_spend"]["limit_usd"] is None
