"""The RunPod emulator's job and webhook lines name the image that ran the job and, for a FAILED job, its error;
the ComfyUI emulator's lines name the worker's image. Every line is checked against logging schema v1."""

from __future__ import annotations

import io
import json
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
from emulator_harness import wait_for

from goldgate.local.comfyui import ComfyUIEmulator
from goldgate.local.runpod import FaultConfig
from goldgate.runpod import EndpointPatch, JobPolicy

LOG_SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "logging-schema-v1.json").read_text())
IMG1 = "local/worker@sha256:" + "1" * 64
IMG2 = "local/worker@sha256:" + "2" * 64


def _lines(text: str) -> list[dict[str, Any]]:
    validator = jsonschema.Draft202012Validator(LOG_SCHEMA)
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        errors = [e.message for e in validator.iter_errors(line)]
        assert errors == [], (line, errors)
    return lines


def _emulator_lines(stack: Any) -> list[dict[str, Any]]:
    return _lines((stack.emulator.logs_dir / "runpod-emulator.jsonl").read_text())


def _of(lines: list[dict[str, Any]], runpod_job_id: str, prefix: str) -> list[dict[str, Any]]:
    return [x for x in lines if x.get("runpod_job_id") == runpod_job_id and x["event"].startswith(prefix)]


def test_job_and_webhook_lines_name_the_image_and_a_failed_jobs_error(make_stack, receiver) -> None:
    stack = make_stack()
    ep = stack.endpoint(image=IMG1)
    jobs = stack.jobs(ep.id)
    hook = f"{receiver.url}?job=svc-1&sig=deadbeef"
    failed = jobs.run({"job_id": "svc-1", "fail": "ComfyUI rejected the prompt: Value not in list"}, webhook=hook)
    raised = jobs.run({"job_id": "svc-2", "raise": "the handler broke"}, webhook=hook)
    done = jobs.run({"job_id": "svc-3"}, webhook=hook)
    for job in (failed, raised, done):
        stack.finished(jobs, job.id)
        wait_for(lambda job=job: receiver.for_job(job.id), f"the webhook of {job.id}")
    wait_for(lambda: stack.emulator.webhooks.pending() == 0, "every delivery to be logged")
    lines = _emulator_lines(stack)
    [finished] = _of(lines, failed.id, "job.finished")
    assert finished["status"] == "FAILED"
    assert finished["error"] == {"type": "JobFailed", "message": "ComfyUI rejected the prompt: Value not in list"}
    [finished] = _of(lines, raised.id, "job.finished")
    # The SDK wraps a raised exception as JSON: its type and message, not the JSON text, make the error.
    assert finished["status"] == "FAILED" and finished["error"]["message"] == "the handler broke"
    assert "RuntimeError" in finished["error"]["type"]
    [finished] = _of(lines, done.id, "job.finished")
    assert finished["status"] == "COMPLETED" and finished["error"] is None
    for job in (failed, raised, done):
        job_lines = _of(lines, job.id, "job.") + _of(lines, job.id, "webhook.")
        assert {x["event"] for x in job_lines} >= {"job.queued", "job.started", "job.finished", "webhook.delivered"}
        assert {x["worker_image_tag"] for x in job_lines} == {IMG1}, job_lines


def test_a_failed_jobs_logged_error_masks_the_endpoints_secrets(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint(image=IMG1, env={"R2_SECRET_ACCESS_KEY": "s3cr3t-r2-value", "STACK": "staging"})
    jobs = stack.jobs(ep.id)
    job = stack.finished(jobs, jobs.run({"job_id": "svc-1", "fail": "upload refused with s3cr3t-r2-value"}).id)
    assert job.status == "FAILED"
    text = (stack.emulator.logs_dir / "runpod-emulator.jsonl").read_text()
    [finished] = _of(_lines(text), job.id, "job.finished")
    assert finished["error"]["message"] == "upload refused with [redacted]"
    assert "s3cr3t-r2-value" not in text


def test_a_crashed_workers_lines_name_the_job_and_the_image(make_stack) -> None:
    stack = make_stack(faults=FaultConfig(worker_crash_rate=1.0))
    ep = stack.endpoint(image=IMG1)
    jobs = stack.jobs(ep.id)
    job = stack.finished(jobs, jobs.run({"job_id": "svc-1", "trace_id": "ab" * 16, "sleep": 1}).id)
    assert job.status == "COMPLETED"  # the crash hit its first attempt; the job was requeued
    crash = wait_for(lambda: _of(_emulator_lines(stack), job.id, "worker.crash_injected"), "the crash line")
    assert [(x["job_id"], x["trace_id"], x["worker_image_tag"]) for x in crash] == [("svc-1", "ab" * 16, IMG1)]
    lines = _emulator_lines(stack)
    assert [x["worker_image_tag"] for x in _of(lines, job.id, "job.requeued")] == [IMG1]


def test_a_timed_out_jobs_finished_line_says_why(make_stack) -> None:
    stack = make_stack(min_execution_timeout_ms=100)
    ep = stack.endpoint(image=IMG1)
    jobs = stack.jobs(ep.id)
    slow = stack.finished(jobs, jobs.run({"job_id": "svc-1", "sleep": 60},
                                        policy=JobPolicy(execution_timeout_ms=500)).id)
    assert slow.status == "TIMED_OUT"
    [finished] = _of(_emulator_lines(stack), slow.id, "job.finished")
    assert finished["status"] == "TIMED_OUT" and finished["worker_image_tag"] == IMG1
    assert finished["error"] == {"type": "JobTimedOut", "message": "job exceeded its execution timeout of 500 ms"}


def test_a_jobs_lines_name_the_image_that_ran_it_after_the_endpoint_moved_on(make_stack, receiver,
                                                                            tmp_path: Path) -> None:
    stack = make_stack()
    ep = stack.endpoint(image=IMG1)
    jobs = stack.jobs(ep.id)
    job = jobs.run({"job_id": "svc-1", "hold": str(tmp_path)}, webhook=f"{receiver.url}?job=svc-1&sig=x")
    wait_for(lambda: jobs.status(job.id).status == "IN_PROGRESS", "the job to run")
    stack.control.update_endpoint(ep.id, EndpointPatch(image=IMG2))  # a deploy while the job runs on IMG1
    queued = jobs.run({"job_id": "svc-2"})
    (tmp_path / "release").touch()
    stack.finished(jobs, job.id)
    wait_for(lambda: receiver.for_job(job.id), "the webhook")
    wait_for(lambda: stack.emulator.webhooks.pending() == 0, "every delivery to be logged")
    lines = _emulator_lines(stack)
    ran = _of(lines, job.id, "job.finished") + _of(lines, job.id, "webhook.")
    assert ran and {x["worker_image_tag"] for x in ran} == {IMG1}
    # A job no worker has taken yet names the image its endpoint runs now.
    assert [x["worker_image_tag"] for x in _of(lines, queued.id, "job.queued")] == [IMG2]


def test_the_comfyui_emulators_lines_name_the_workers_image(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKER_IMAGE_TAG", IMG1)  # as the endpoint's env gives it to the worker's container
    out = io.StringIO()
    with ComfyUIEmulator(tmp_path, log_stream=out, stack="staging") as emulator:
        assert emulator.wait_listening(30)
        request = urllib.request.Request(emulator.url + "/prompt", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as exc:
            assert exc.code == 400  # no prompt: a logged refusal
        # The line is written after the answer is sent: the client can read the answer first (a loaded CI machine)
        wait_for(lambda: "http_request" in out.getvalue(), "the refusal's http_request line", timeout_s=30)
    lines = _lines(out.getvalue())
    assert {x["event"] for x in lines} >= {"comfyui_listening", "http_request"}
    assert {x["worker_image_tag"] for x in lines} == {IMG1} and {x["stack"] for x in lines} == {"staging"}
