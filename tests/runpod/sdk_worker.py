"""A worker image for emulator tests: a trivial handler under the real `runpod` SDK loop (cloud mode).

input {"sleep": s} waits (cancellable), {"hold": dir} waits until the test creates dir/release (a job a test
sees running for as long as it needs, however slow the machine), {"fail": msg} returns an error, {"raise": msg} raises;
{"progress_then_fail_once": dir} posts progress and fails on the first attempt (dir/attempt-1 marks it),
each attempt n holding until the test creates dir/release-n, so a test sees every state of each attempt;
the output names the image and worker it ran on, so tests can see which release served a job.
An endpoint with env HANDLER=stream runs a generator handler instead: input {"chunks": [...]} yields each
chunk in turn (the SDK posts each to the stream URL and aggregates them into the output).
input {"mkdtemp": true} leaves a temp dir behind, as the ComfyUI emulator of a killed worker does; an endpoint
with env HANDLER=unfit leaves one at boot (its log names it: "left temp dir <path>"), then fails a fitness check,
so the SDK ends the worker with os._exit."""

import asyncio
import os
import tempfile
from pathlib import Path

from goldgate.local.worker_process import import_runpod_sdk

import_runpod_sdk()   # the SDK as it is, without py-cpuinfo's probe of the CPU (one Python process per worker start)
import runpod


async def handler(job):
    data = job["input"]
    if data.get("progress_then_fail_once"):
        gate = Path(data["progress_then_fail_once"])
        first = not (gate / "attempt-1").exists()
        if first:
            (gate / "attempt-1").touch()
            runpod.serverless.progress_update(job, "first attempt at 50%")
        while not (gate / f"release-{1 if first else 2}").exists():
            await asyncio.sleep(0.05)
        if first:
            return {"error": "first attempt fails"}
    if data.get("mkdtemp"):
        return {"tempdir": _leave_a_temp_dir()}
    if data.get("hold"):
        while not (Path(data["hold"]) / "release").exists():
            await asyncio.sleep(0.05)
    if data.get("sleep"):
        await asyncio.sleep(float(data["sleep"]))
    if data.get("fail"):
        return {"error": str(data["fail"])}
    if data.get("raise"):
        raise RuntimeError(str(data["raise"]))
    return {"echo": data, "image": os.environ.get("WORKER_IMAGE"), "worker": os.environ.get("RUNPOD_POD_ID"),
            "marker": os.environ.get("MARKER")}


async def stream_handler(job):
    for chunk in job["input"].get("chunks", []):
        await asyncio.sleep(0.2)  # apart in time, so a reader sees the stream grow while the job runs
        yield chunk


def _leave_a_temp_dir() -> str:
    return tempfile.mkdtemp(prefix=f"sdk-worker-{os.environ.get('RUNPOD_POD_ID')}-")


def unfit() -> None:
    raise RuntimeError("this worker is unfit")


if __name__ == "__main__":
    if os.environ.get("HANDLER") == "unfit":
        print(f"left temp dir {_leave_a_temp_dir()}", flush=True)
        runpod.serverless.register_fitness_check(unfit)
    if os.environ.get("HANDLER") == "stream":
        runpod.serverless.start({"handler": stream_handler, "return_aggregate_stream": True})
    else:
        runpod.serverless.start({"handler": handler})
