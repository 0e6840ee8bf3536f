"""The real `runpod` SDK's client side (runpod.Endpoint, runpod.AsyncioEndpoint) against the emulator: every
call the SDK makes must get the shape it reads, as RunPod's serverless API answers it."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import runpod
from emulator_harness import API_KEY, wait_for
from runpod.http_client import ClientSession

CHUNKS = [{"step": 1}, {"step": 2}, "three", [4]]


def _sdk_at(stack: Any, monkeypatch: Any) -> None:
    # The SDK builds every data-plane URL as f"{runpod.endpoint_url_base}/{endpoint_id}/...".
    monkeypatch.setattr(runpod, "endpoint_url_base", stack.emulator.endpoint_base)


def _bounded(chunks: Any, most: int) -> list[Any]:
    """The SDK's stream generator loops until the job ends: take at most `most` items, so a stream that
    repeats its chunks fails the test instead of never ending."""
    return list(itertools.islice(chunks, most))


def test_the_sdk_job_stream_yields_each_chunk_of_a_generator_handler_once(make_stack, monkeypatch) -> None:
    stack = make_stack()
    ep = stack.endpoint(env={"HANDLER": "stream"})
    _sdk_at(stack, monkeypatch)
    job = runpod.Endpoint(ep.id, api_key=API_KEY).run({"chunks": CHUNKS})
    assert _bounded(job.stream(), len(CHUNKS) + 3) == CHUNKS
    assert job.status() == "COMPLETED"
    assert job.output() == CHUNKS  # return_aggregate_stream: the output is every chunk, in order


def test_the_asyncio_sdk_endpoint_runs_streams_cancels_and_purges(make_stack, monkeypatch) -> None:
    stack = make_stack()
    plain = stack.endpoint(workers_max=1)
    streaming = stack.endpoint(name="goldgate-stream", env={"HANDLER": "stream"})
    _sdk_at(stack, monkeypatch)

    async def scenario() -> dict[str, Any]:
        async with ClientSession() as session:
            endpoint = runpod.AsyncioEndpoint(plain.id, session, api_key=API_KEY)
            job = await endpoint.run({"via": "AsyncioEndpoint"})
            output = await job.output(timeout=60)
            long = await endpoint.run({"sleep": 30})
            cancelled = await long.cancel()
            health = await endpoint.health()
            purged = await endpoint.purge_queue()
            stream_job = await runpod.AsyncioEndpoint(streaming.id, session, api_key=API_KEY).run({"chunks": CHUNKS})
            streamed = []
            async for chunk in stream_job.stream():
                streamed.append(chunk)
                if len(streamed) > len(CHUNKS) + 3:
                    break
            return {"output": output, "cancelled": cancelled, "cancelled_status": await long.status(),
                    "health": health, "purged": purged, "streamed": streamed,
                    "stream_status": await stream_job.status()}

    seen = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert seen["output"]["echo"] == {"via": "AsyncioEndpoint"}
    assert seen["cancelled"]["status"] == "CANCELLED" and seen["cancelled_status"] == "CANCELLED"
    assert seen["health"]["jobs"]["completed"] == 1
    assert seen["purged"] == {"removed": 0, "status": "completed"}
    assert seen["streamed"] == CHUNKS and seen["stream_status"] == "COMPLETED"


def test_the_sdk_client_cancels_purges_and_reads_health(make_stack, monkeypatch) -> None:
    stack = make_stack()
    ep = stack.endpoint(workers_max=1)
    _sdk_at(stack, monkeypatch)
    endpoint = runpod.Endpoint(ep.id, api_key=API_KEY)
    running = endpoint.run({"sleep": 30})
    wait_for(lambda: running.status() == "IN_PROGRESS", "the first job to start")
    queued = [endpoint.run({"n": n}) for n in range(2)]
    assert endpoint.purge_queue() == {"removed": 2, "status": "completed"}
    assert running.cancel()["status"] == "CANCELLED" and running.status() == "CANCELLED"
    health = endpoint.health()
    assert set(health) >= {"jobs", "workers"}
    assert health["jobs"]["inQueue"] == 0 and health["jobs"]["inProgress"] == 0
    assert all(isinstance(queued_job.job_id, str) for queued_job in queued)
