"""A job RunPod stops (cancel, executionTimeout) while its images upload: the worker must not carry on and
complete it behind RunPod's back."""

from __future__ import annotations

import asyncio
import threading

import pytest
from worker_harness import job, s3_client

from images.worker import handler as handler_module


def _stored_keys(storage) -> list[str]:
    listing = s3_client(storage.endpoint_url).list_objects_v2(Bucket=storage.bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_a_job_stopped_while_its_images_upload_stores_no_outcome_and_leaves_no_image(
        comfy, models_dir, runtime_factory, storage, logs, monkeypatch):
    # RunPod reports the job CANCELLED (or TIMED_OUT). Were its outcome.json stored anyway, a recovery after RunPod
    # forgets the job (30 min) would read it and record the job completed, while one a minute earlier records it
    # cancelled; and the worker's log would say job_completed for a job RunPod stopped.
    runtime = runtime_factory(comfy.url, models_dir)
    monkeypatch.setattr(handler_module, "_runtime", runtime)
    client = runtime.store._client
    put = client.put_object
    first_put = threading.Event()

    def put_held_until_the_job_is_stopped(**kwargs):
        if not first_put.is_set():
            first_put.set()
            # This runs in the job's thread: the handler's stop signal is the one the cancel sets.
            stop = handler_module._job_stop.get()
            assert stop is not None and stop.wait(30), "the cancel never reached the job's thread"
        return put(**kwargs)

    client.put_object = put_held_until_the_job_is_stopped

    async def cancel_while_uploading() -> None:
        task = asyncio.create_task(handler_module.handler(job({"prompt": "a lighthouse", "batch_size": 2})))
        while not first_put.is_set():
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(cancel_while_uploading(), 60))
    events = logs.events()
    assert "job_completed" not in events, events
    assert "job_cancelled" in events, events
    cancelled = next(line for line in logs.lines() if line["event"] == "job_cancelled")
    assert cancelled["status"] == "CANCELLED"
    assert "upload" in cancelled["message"], cancelled
    assert _stored_keys(storage) == []


def test_a_job_not_stopped_uploads_and_stores_its_outcome(comfy, models_dir, runtime_factory, storage, logs,
                                                          monkeypatch):
    # The same path, never stopped, completes as before: the stop check must not stop a job nobody stopped.
    runtime = runtime_factory(comfy.url, models_dir)
    monkeypatch.setattr(handler_module, "_runtime", runtime)
    out = asyncio.run(handler_module.handler(job({"prompt": "a lighthouse", "batch_size": 2})))
    assert "error" not in out, out
    assert "job_completed" in logs.events()
    assert _stored_keys(storage) == ["results/job-1/0.png", "results/job-1/1.png", "results/job-1/outcome.json"]
