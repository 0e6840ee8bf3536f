"""A cancelled job ran on a GPU until RunPod stopped it: its run time and cost estimate are recorded. RunPod's
/cancel answers only id and status; its /status documents delayTime and executionTime, so a cancel reads it
once (one call for this client's request, no polling). When that read fails or tells another status, the cancel
is recorded as /cancel answered it, without a run time."""

from __future__ import annotations

import pytest
from service_testkit import RUNPOD_KEY
from test_review17_cancel_route import CancellingRunPod, _cancel


@pytest.fixture
def fake_runpod():  # the cancel tests' plane: the kit's, with /cancel
    fake = CancellingRunPod(RUNPOD_KEY).start()
    yield fake
    fake.stop()


def _running(svc, delay_ms: int = 1_200, execution_ms: int = 30_000) -> tuple[str, str]:
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    svc.fake.set_status(rid, {"id": rid, "status": "IN_PROGRESS", "delayTime": delay_ms,
                              "executionTime": execution_ms})
    svc.clock[0] += 40
    return job_id, rid


def test_a_cancelled_job_that_ran_has_its_run_time_and_cost(svc):
    job_id, rid = _running(svc)
    status, body, _ = _cancel(svc, job_id)
    assert status == 200 and body["cancelled"] is True, body
    assert svc.fake.cancel_calls == [rid] and svc.fake.status_calls.count(rid) == 1
    [metrics] = svc.rows("SELECT * FROM job_metrics WHERE job_id = ?", (job_id,))
    assert (metrics["status"], metrics["runpod_queue_duration_ms"], metrics["runpod_run_duration_ms"]) == (
        "cancelled", 1_200, 30_000)
    assert metrics["cost_estimate_usd"] is not None and metrics["cost_estimate_usd"] > 0
    assert svc.job(job_id)["cost_estimate_usd"] == metrics["cost_estimate_usd"]
    [delivery] = svc.rows("SELECT * FROM webhook_deliveries WHERE job_id = ?", (job_id,))
    assert delivery["source"] == "cancel"


def test_a_status_read_that_fails_leaves_the_cancel_recorded_without_a_run_time(svc):
    job_id, _rid = _running(svc)
    svc.fake.status_mode = "error"
    status, body, _ = _cancel(svc, job_id)
    assert status == 200 and body["cancelled"] is True, body
    [metrics] = svc.rows("SELECT * FROM job_metrics WHERE job_id = ?", (job_id,))
    assert (metrics["status"], metrics["runpod_run_duration_ms"], metrics["cost_estimate_usd"]) == (
        "cancelled", None, None)


def test_a_status_read_telling_another_status_is_not_taken(svc):
    job_id, rid = _running(svc)
    svc.fake.cancel_answer = {"id": rid, "status": "CANCELLED"}  # /status still says IN_PROGRESS, with timings
    status, body, _ = _cancel(svc, job_id)
    assert status == 200 and body["status"] == "cancelled", body
    assert svc.fake.status_calls.count(rid) == 1
    [metrics] = svc.rows("SELECT * FROM job_metrics WHERE job_id = ?", (job_id,))
    assert metrics["runpod_run_duration_ms"] is None
