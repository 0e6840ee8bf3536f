"""A job RunPod stops (cancel, executionTimeout) while its outcome.json is being stored, after every image was
stored: RunPod reports it CANCELLED or TIMED_OUT and drops the output, so nothing it stored may stay behind. A
recovery after RunPod forgets the job (30 min) would read the outcome and record the job completed."""

from __future__ import annotations

import asyncio
import threading

import pytest
from worker_harness import job, s3_client

from images.worker import handler as handler_module


def _stored_keys(storage) -> list[str]:
    listing = s3_client(storage.endpoint_url).list_objects_v2(Bucket=storage.bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def _stopped_while_the_outcome_is_stored(runtime, storage, logs, monkeypatch) -> None:
    monkeypatch.setattr(handler_module, "_runtime", runtime)
    client = runtime.store._client
    put = client.put_object
    outcome_put = threading.Event()

    def outcome_put_held_until_the_job_is_stopped(**kwargs):
        if kwargs["Key"].endswith("/outcome.json") and not outcome_put.is_set():
            outcome_put.set()
            stop = handler_module._job_stop.get()  # the job's thread: the stop the cancel sets
            assert stop is not None and stop.wait(30), "the cancel never reached the job's thread"
        return put(**kwargs)

    client.put_object = outcome_put_held_until_the_job_is_stopped

    async def cancel_while_the_outcome_is_stored() -> None:
        task = asyncio.create_task(handler_module.handler(job({"prompt": "a lighthouse", "batch_size": 2})))
        while not outcome_put.is_set():
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(cancel_while_the_outcome_is_stored(), 60))


def test_a_job_stopped_while_its_outcome_is_stored_leaves_nothing(comfy, models_dir, runtime_factory, storage,
                                                                 logs, monkeypatch) -> None:
    _stopped_while_the_outcome_is_stored(runtime_factory(comfy.url, models_dir), storage, logs, monkeypatch)
    events = logs.events()
    assert "job_completed" not in events, events
    cancelled = next(line for line in logs.lines() if line["event"] == "job_cancelled")
    assert cancelled["status"] == "CANCELLED" and "outcome" in cancelled["message"], cancelled
    assert _stored_keys(storage) == []


def test_an_earlier_runs_images_and_outcome_stay_when_a_rerun_is_stopped(comfy, models_dir, runtime_factory,
                                                                          storage, logs, monkeypatch) -> None:
    # RunPod ran the job before (a /retry): that run's images and outcome are the job's result, not this run's.
    runtime = runtime_factory(comfy.url, models_dir)
    monkeypatch.setattr(handler_module, "_runtime", runtime)
    first = asyncio.run(handler_module.handler(job({"prompt": "a lighthouse", "batch_size": 2})))
    assert "error" not in first, first
    kept = _stored_keys(storage)
    assert kept == ["results/job-1/0.png", "results/job-1/1.png", "results/job-1/outcome.json"]
    _stopped_while_the_outcome_is_stored(runtime, storage, logs, monkeypatch)
    assert _stored_keys(storage) == kept
