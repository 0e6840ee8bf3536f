"""The line that ends a job (`job.finished`, or `job.result_rejected`) carries its spend: `data.cost_estimate_usd`, the
estimate its metrics row records (a retried job's: every attempt's sum), and `data.gpu_type`, the GPU it ran on, so
spend can be summed from the logs alone. The core over real SQLite and moto S3, and the Cloudflare Worker entry over
the stand-ins for its bindings, log the same."""

from __future__ import annotations

import asyncio
import json

import pytest
from service_testkit import API_TOKEN, WEBHOOK_SECRET
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, entry, make_env  # noqa: F401 (entry is a fixture)

from service.signing import webhook_signature

RTX_4090_USD_PER_S = 0.00031  # the flex price of the test stack's GPU (one GPU, no configured price)
GPU = "NVIDIA GeForce RTX 4090"


def _ending(log_lines, job_id: str) -> list[dict]:
    return [line for line in map(json.loads, log_lines) if line["job_id"] == job_id
            and line["event"] in ("job.finished", "job.result_rejected")]


def test_a_finished_jobs_line_carries_its_cost_and_gpu(svc, log_lines):
    job_id = svc.create()["job_id"]
    assert svc.deliver(job_id, svc.completed(job_id, [svc.put_result(job_id)], execution_ms=2500))[0] == 200
    (line,) = _ending(log_lines, job_id)
    cost = svc.call("GET", f"/api/status/{job_id}")[1]["cost_estimate_usd"]
    assert cost == pytest.approx(3 * RTX_4090_USD_PER_S)
    assert (line["event"], line["data"]["cost_estimate_usd"], line["data"]["gpu_type"]) == ("job.finished", cost, GPU)


def test_a_rejected_result_and_a_failure_carry_the_spend_too(svc, log_lines):
    rejected = svc.create()["job_id"]
    missing = {"key": f"results/{rejected}/0.png", "content_type": "image/png", "bytes": 10}  # never uploaded
    svc.deliver(rejected, svc.completed(rejected, [missing], execution_ms=1200, gpu_type="NVIDIA H100 80GB HBM3"))
    (line,) = _ending(log_lines, rejected)
    assert line["event"] == "job.result_rejected" and line["status"] == "failed"
    assert line["data"]["cost_estimate_usd"] == pytest.approx(2 * 0.00116)
    assert line["data"]["gpu_type"] == "NVIDIA H100 80GB HBM3"

    failed = svc.create()["job_id"]
    svc.deliver(failed, {"id": svc.runpod_id(failed), "status": "FAILED", "delayTime": 5, "executionTime": 4000,
                         "error": "ComfyUI crashed"})
    (line,) = _ending(log_lines, failed)
    assert (line["level"], line["data"]["cost_estimate_usd"], line["data"]["gpu_type"]) == (
        "warning", pytest.approx(4 * RTX_4090_USD_PER_S), GPU)


def test_a_retried_jobs_last_line_carries_every_attempts_sum(svc, log_lines):
    job_id = svc.create()["job_id"]
    svc.deliver(job_id, {"id": svc.runpod_id(job_id), "status": "FAILED", "delayTime": 5, "executionTime": 4000,
                         "error": "ComfyUI crashed"})
    svc.deliver(job_id, svc.completed(job_id, [svc.put_result(job_id)], execution_ms=2500))  # RunPod's /retry
    first, last = _ending(log_lines, job_id)
    assert first["data"]["cost_estimate_usd"] == pytest.approx(4 * RTX_4090_USD_PER_S)
    assert last["data"]["cost_estimate_usd"] == pytest.approx(7 * RTX_4090_USD_PER_S)
    assert last["data"]["cost_estimate_usd"] == svc.call("GET", f"/api/status/{job_id}")[1]["cost_estimate_usd"]


def test_the_worker_entry_logs_the_same_spend(entry, tmp_path, fake_runpod, capsys, log_lines):  # noqa: F811
    env = make_env(tmp_path, fake_runpod.base)  # GPU_TYPE NVIDIA L4, GPU_COUNT 2, PRICE_PER_GPU_SECOND 0.0005
    worker = entry.Default(Ctx(), env)
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    auth = {"authorization": f"Bearer {API_TOKEN}"}

    async def scenario() -> str:
        created = await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", json.dumps(
            {"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode(), auth))
        job_id = json.loads(created.body)["job_id"]
        rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
        key = f"results/{job_id}/0.png"
        env.RESULTS.put(key, b"\x89PNG data", "image/png")
        hook = await worker.fetch(JsRequest(
            "POST", f"https://api.example/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}",
            json.dumps({"id": rid, "status": "COMPLETED", "delayTime": 3, "executionTime": 1001,
                        "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 9}]}}).encode()))
        assert hook.status == 200
        return job_id

    job_id = asyncio.run(scenario())
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    log_lines.extend(lines)  # validated against the schema and scanned for secrets at teardown
    (line,) = _ending(lines, job_id)
    assert line["data"]["cost_estimate_usd"] == pytest.approx(0.0005 * 2 * 2) and line["data"]["gpu_type"] == "NVIDIA L4"
