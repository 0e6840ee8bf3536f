"""The cost of a job RunPod ran more than once: RunPod's /retry re-runs a FAILED or TIMED_OUT job under the
same id and bills every attempt, so a user reconciling our estimate with the invoice needs the attempts' sum
in the job, its status view and GET /api/metrics, each attempt counted once."""

from __future__ import annotations

import asyncio
import json

import pytest
from service_testkit import API_TOKEN, BUCKET, WEBHOOK_SECRET
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, entry, make_env  # noqa: F401 (entry is a fixture)
from test_service_webhook import _AnswerLost

from service.signing import webhook_signature

RTX_4090_USD_PER_S = 0.00031  # the flex price of the test stack's GPU (one GPU, no configured price)
FIRST = 4 * RTX_4090_USD_PER_S  # a 4000 ms attempt bills 4 s
SECOND = 3 * RTX_4090_USD_PER_S  # a 2500 ms attempt bills 3 s


def _failed(rid, status="FAILED", execution_ms=4000):
    return {"id": rid, "status": status, "delayTime": 50, "executionTime": execution_ms, "error": "ComfyUI crashed"}


def _costs(svc, job_id):
    """(the job's cost, its status view's, its metrics row's, GET /api/metrics' total and its release's)."""
    _, view, _ = svc.call("GET", f"/api/status/{job_id}")
    _, report, _ = svc.call("GET", "/api/metrics")
    [metric] = svc.rows("SELECT cost_estimate_usd FROM job_metrics WHERE job_id = ?", (job_id,))
    [release] = report["by_worker_image_tag"]
    return (svc.job(job_id)["cost_estimate_usd"], view["cost_estimate_usd"], metric["cost_estimate_usd"],
            report["overall"]["cost_total_usd"], release["cost_total_usd"])


@pytest.mark.parametrize("first_status", ["FAILED", "TIMED_OUT"])
def test_a_retried_job_costs_both_attempts_everywhere_it_is_shown(svc, first_status):
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    assert svc.deliver(job_id, _failed(rid, first_status))[1]["applied"]
    assert _costs(svc, job_id) == (pytest.approx(FIRST),) * 5
    # the operator runs RunPod's /retry: same RunPod id, the new attempt succeeds
    image = svc.put_result(job_id)
    assert svc.deliver(job_id, svc.completed(job_id, [image], execution_ms=2500))[1] == {
        "applied": True, "reason": "applied", "status": "completed"}
    assert _costs(svc, job_id) == (pytest.approx(FIRST + SECOND),) * 5
    # the durations are the final attempt's
    [metric] = svc.rows("SELECT runpod_run_duration_ms FROM job_metrics WHERE job_id = ?", (job_id,))
    assert metric["runpod_run_duration_ms"] == 2500


def test_repeated_deliveries_of_either_attempt_add_nothing(svc):
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    failure, success = _failed(rid), svc.completed(job_id, [svc.put_result(job_id)], execution_ms=2500)
    svc.deliver(job_id, failure)
    svc.deliver(job_id, success)
    for payload in (failure, success, success, failure):
        assert svc.deliver(job_id, payload)[1]["reason"] == "duplicate"
    # a FAILED arriving after the COMPLETED is ignored, and so is its cost (WEBHOOK_SEMANTICS.md, "Cost of a retried job")
    assert svc.deliver(job_id, _failed(rid, execution_ms=9000))[1]["reason"] == "terminal_conflict"
    assert _costs(svc, job_id) == (pytest.approx(FIRST + SECOND),) * 5


def test_an_attempt_whose_result_was_rejected_is_billed_and_its_later_completion_adds_nothing(svc):
    # RunPod's /retry takes FAILED and TIMED_OUT jobs only: after its COMPLETED (whose results we rejected), a
    # later COMPLETED for the id is that attempt reported again (a recovery's /status answer), not a third one.
    job_id = svc.create()["job_id"]
    svc.deliver(job_id, _failed(svc.runpod_id(job_id)))
    unstored = {"key": f"results/{job_id}/lost.png", "content_type": "image/png", "bytes": 9}
    assert svc.deliver(job_id, svc.completed(job_id, [unstored], execution_ms=2500))[1]["status"] == "failed"
    assert _costs(svc, job_id) == (pytest.approx(FIRST + SECOND),) * 5
    image = svc.put_result(job_id)
    assert svc.deliver(job_id, svc.completed(job_id, [image], execution_ms=2400))[1]["status"] == "completed"
    assert _costs(svc, job_id) == (pytest.approx(FIRST + SECOND),) * 5


def test_our_guessed_failure_adds_no_cost_to_runpods_attempts(svc):
    """/run's answer was lost: the job is failed on our guess, with no RunPod id and no cost. RunPod's own
    outcome replaces the guess with its attempt's cost alone; its retried attempt then adds to that."""
    lost = _AnswerLost(svc)
    svc.app.runpod = lost
    _, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}})
    job_id = body["error"]["job_id"]
    assert svc.job(job_id)["cost_estimate_usd"] is None
    [rid] = lost.accepted
    assert svc.deliver(job_id, _failed(rid))[1]["applied"]
    assert _costs(svc, job_id) == (pytest.approx(FIRST),) * 5
    image = svc.put_result(job_id)
    svc.deliver(job_id, svc.completed(job_id, [image], execution_ms=2500))
    assert _costs(svc, job_id) == (pytest.approx(FIRST + SECOND),) * 5


def test_a_retried_job_costs_both_attempts_over_d1_in_the_same_round_trips(entry, tmp_path, fake_runpod):  # noqa: F811
    """The Worker's path: D1 has no interactive transactions, so the sum rides in the one batch a delivery
    writes, after the one read; the report over D1 shows it too."""
    env = make_env(tmp_path, fake_runpod.base)  # 2 GPUs at 0.0005 USD per GPU-second
    worker = entry.Default(Ctx(), env)
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    auth = {"authorization": f"Bearer {API_TOKEN}"}

    async def call(method, path, body=None, headers=None):
        raw = json.dumps(body).encode() if body is not None else b""
        return json.loads((await worker.fetch(JsRequest(method, "https://api.example" + path, raw, headers))).body)

    async def scenario():
        job_id = (await call("POST", "/api/queue/create", {"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}},
                             auth))["job_id"]
        rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
        hook = f"/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}"
        assert (await call("POST", hook, _failed(rid, execution_ms=1500)))["applied"]
        key = f"results/{job_id}/0.png"
        env.RESULTS.put(key, b"\x89PNG data", "image/png")
        calls_before = len(env.DB.calls)
        completed = {"id": rid, "status": "COMPLETED", "delayTime": 3, "executionTime": 1001,
                     "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 9}]}}
        assert (await call("POST", hook, completed))["status"] == "completed"
        # one read, then one batch: the job's UPDATE, the delivery's record, the day's spend, the metrics row
        (read, _), batch = env.DB.calls[calls_before:]
        assert read == "all" and batch == ("batch", "4")
        status = await call("GET", f"/api/status/{job_id}", headers=auth)
        report = await call("GET", "/api/metrics", headers=auth)
        return status["cost_estimate_usd"], report["overall"]["cost_total_usd"]

    # 1500 ms bills 2 s, 1001 ms bills 2 s: 4 s on 2 GPUs
    assert asyncio.run(scenario()) == (pytest.approx(0.0005 * 2 * 4),) * 2


def test_a_retried_attempt_recovered_from_the_store_shows_its_own_timings_not_the_failed_attempts(svc):
    """The retried attempt's webhook was lost and RunPod has forgotten the job: recovery applies the outcome its
    worker stored, whose RunPod timings are unknown. Its run and queue times must not be the failed attempt's
    (they would enter the run-time percentiles as a success's), and only the attempt that has a cost is costed."""
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    svc.deliver(job_id, _failed(rid))
    del svc.fake.jobs[rid]
    output = svc.completed(job_id, [svc.put_result(job_id)])["output"]
    svc.s3.put_object(Bucket=BUCKET, Key=f"results/{job_id}/outcome.json", ContentType="application/json",
                      Body=json.dumps({"runpod_job_id": rid, "output": output}).encode())
    assert svc.call("POST", f"/api/admin/recover/{job_id}")[1]["status"] == "completed"
    _, view, _ = svc.call("GET", f"/api/status/{job_id}")
    assert (view["timings"]["queue_ms"], view["timings"]["run_ms"]) == (None, None)
    [metric] = svc.rows("SELECT * FROM job_metrics WHERE job_id = ?", (job_id,))
    assert (metric["runpod_queue_duration_ms"], metric["runpod_run_duration_ms"]) == (None, None)
    assert _costs(svc, job_id) == (pytest.approx(FIRST),) * 5
