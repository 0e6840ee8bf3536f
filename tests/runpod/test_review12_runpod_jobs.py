"""Review 12: the emulator's job API against RunPod's documented wire format, run with real SDK workers.

- A request's `s3Config` is "passed directly to your worker but not included in responses" (RunPod's send-requests
  page): the worker finds it in the job, /status and webhooks never show it.
- RunPod's payload limits hold for results too (10 MB for /run, 20 MB for /runsync, handler-functions page): its
  job-done answers a larger result 400 (observed: "Failed to return job results. | 400"). Here the job then FAILS
  naming the limit, however large the result, instead of completing with it.
- A non-object `policy` is refused, not taken as "no policy"."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_harness import API_KEY, Stack, WebhookReceiver, wait_for

from goldgate.local.runpod import EmulatorConfig, RunPodEmulator
from goldgate.local.runpod.server import MAX_BODY
from goldgate.runpod import ControlPlaneClient

# A worker image whose handler shows what the job it was handed holds, or returns a result of a given size.
HANDLER = """
import runpod


def handler(job):
    data = job["input"]
    if "result_bytes" in data:
        return {"blob": "x" * int(data["result_bytes"])}
    s3 = job.get("s3Config") or {}
    return {"s3_fields": sorted(s3), "bucket": s3.get("bucketName")}


runpod.serverless.start({"handler": handler})
"""

S3_CONFIG = {"accessId": "AKIDREVIEW12", "accessSecret": "s3-secret-review12-do-not-show",
             "bucketName": "renders", "endpointUrl": "https://s3.example.test"}


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    script = tmp_path / "handler.py"
    script.write_text(HANDLER)

    def launcher(image_ref: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, str(script)], env

    started: list[Stack] = []

    def make(**config: Any) -> Stack:
        cfg = EmulatorConfig(**{"api_key": API_KEY, "logs_dir": tmp_path / f"logs{len(started)}",
                                "job_take_hold_s": 0.5, "ping_interval_ms": 1000, "worker_stop_grace_s": 3.0,
                                "webhook_retry_delay_s": 0.2, **config})
        emu = RunPodEmulator(cfg, launcher=launcher).start()
        started.append(Stack(emu, ControlPlaneClient(API_KEY, emu.api_base)))
        return started[-1]

    yield make
    for stack in started:
        stack.control.close()
        for pid in stack.emulator.fleet.pids().values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        stack.emulator.stop()


def _post(stack: Stack, endpoint_id: str, op: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{stack.emulator.endpoint_base}/{endpoint_id}/{op}", json=body,
                      headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120)


def _status(stack: Stack, endpoint_id: str, job_id: str) -> dict[str, Any]:
    r = httpx.get(f"{stack.emulator.endpoint_base}/{endpoint_id}/status/{job_id}",
                  headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _finished(stack: Stack, endpoint_id: str, job_id: str) -> dict[str, Any]:
    def terminal() -> dict[str, Any] | None:
        body = _status(stack, endpoint_id, job_id)
        return body if body["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT") else None
    return wait_for(terminal, f"job {job_id} to finish")


def test_a_jobs_s3_config_reaches_the_worker_and_no_answer_or_log(make_stack, receiver: WebhookReceiver) -> None:
    stack = make_stack()
    ep = stack.endpoint()
    accepted = _post(stack, ep.id, "run", {"input": {"n": 1}, "s3Config": S3_CONFIG, "webhook": receiver.url})
    assert accepted.status_code == 200, accepted.text
    job_id = accepted.json()["id"]
    done = _finished(stack, ep.id, job_id)
    assert done["status"] == "COMPLETED", done
    # The handler found the bucket settings in its job, as a RunPod worker does (job["s3Config"]).
    assert done["output"] == {"s3_fields": sorted(S3_CONFIG), "bucket": "renders"}
    assert "s3Config" not in done and S3_CONFIG["accessSecret"] not in str(done)
    delivery = wait_for(lambda: receiver.for_job(job_id), "the webhook")[0]
    assert S3_CONFIG["accessSecret"] not in str(delivery.body)
    log = (stack.emulator.logs_dir / "runpod-emulator.jsonl").read_text()
    assert S3_CONFIG["accessSecret"] not in log


def test_a_non_object_s3_config_or_policy_is_refused(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint(workers_max=0)
    for body, word in (({"input": {}, "s3Config": "renders"}, "s3Config"), ({"input": {}, "policy": []}, "policy"),
                       ({"input": {}, "policy": 0}, "policy")):
        r = _post(stack, ep.id, "run", body)
        assert r.status_code == 400 and word in r.json()["error"], (body, r.text)


def test_a_result_over_the_jobs_payload_limit_fails_the_job_naming_it(make_stack) -> None:
    stack = make_stack(max_run_payload_bytes=4000, max_runsync_payload_bytes=40_000)
    ep = stack.endpoint()
    # Over /run's limit: the result is refused and the job fails, saying what to do instead.
    job_id = _post(stack, ep.id, "run", {"input": {"result_bytes": 10_000}}).json()["id"]
    failed = _finished(stack, ep.id, job_id)
    assert failed["status"] == "FAILED" and "output" not in failed, failed
    assert "4000 bytes" in failed["error"] and "object storage" in failed["error"]
    # The same result fits /runsync's larger limit.
    synced = _post(stack, ep.id, "runsync?wait=60000", {"input": {"result_bytes": 10_000}}).json()
    assert synced["status"] == "COMPLETED" and len(synced["output"]["blob"]) == 10_000, synced["status"]
    # The worker was told, as RunPod tells it: its SDK logs the refused result.
    logs = "".join(p.read_text(errors="replace") for p in stack.emulator.logs_dir.glob("worker-*.log"))
    assert "Failed to return job results" in logs and "400" in logs


def test_a_result_too_large_to_read_still_fails_its_job(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint()
    # Beyond what the emulator reads at all (and beyond both of RunPod's limits): the job must not run on to its
    # execution timeout with the result lost.
    job_id = _post(stack, ep.id, "run", {"input": {"result_bytes": MAX_BODY + 1}}).json()["id"]
    failed = _finished(stack, ep.id, job_id)
    assert failed["status"] == "FAILED" and "limit" in failed["error"], failed


def test_an_input_holding_a_lone_surrogate_still_gets_its_webhook(make_stack, receiver: WebhookReceiver) -> None:
    # A JS client that cuts a prompt mid-emoji sends the lone half as the JSON escape "\ud83d": valid JSON, which no
    # UTF-8 body can carry as is. The job runs; its webhook must still arrive, with the input as it was sent.
    stack = make_stack()
    ep = stack.endpoint()
    body = b'{"input": {"prompt": "a cat \\ud83d"}, "webhook": "' + receiver.url.encode() + b'"}'
    accepted = httpx.post(f"{stack.emulator.endpoint_base}/{ep.id}/run", content=body,
                          headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert accepted.status_code == 200, accepted.text
    job_id = accepted.json()["id"]
    assert _finished(stack, ep.id, job_id)["status"] == "COMPLETED"
    delivery = wait_for(lambda: receiver.for_job(job_id), "the webhook")[0]
    assert delivery.body["status"] == "COMPLETED" and delivery.body["input"] == {"prompt": "a cat \ud83d"}
    assert delivery.content_type == "application/json"  # a JSON body, said so, as RunPod posts it


def test_stream_answers_post_as_well_as_get(make_stack) -> None:
    # RunPod's rate-limit table gives /status, /status-sync and /stream as GET/POST.
    stack = make_stack()
    ep = stack.endpoint(workers_max=0)
    job_id = _post(stack, ep.id, "run", {"input": {"n": 1}}).json()["id"]
    url = f"{stack.emulator.endpoint_base}/{ep.id}/stream/{job_id}"
    h = {"Authorization": f"Bearer {API_KEY}"}
    got, posted = httpx.get(url, headers=h), httpx.post(url, headers=h)
    assert got.status_code == posted.status_code == 200, posted.text
    assert posted.json() == got.json() == {"status": "IN_QUEUE", "stream": []}
