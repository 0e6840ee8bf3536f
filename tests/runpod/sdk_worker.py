"""A worker image for emulator tests: a trivial handler under the real `runpod` SDK loop (cloud mode).

input {"sleep": s} waits (cancellable), {"fail": msg} returns an error, {"raise": msg} raises;
the output names the image and worker it ran on, so tests can see which release served a job."""

import asyncio
import os

import runpod


async def handler(job):
    data = job["input"]
    if data.get("sleep"):
        await asyncio.sleep(float(data["sleep"]))
    if data.get("fail"):
        return {"error": str(data["fail"])}
    if data.get("raise"):
        raise RuntimeError(str(data["raise"]))
    return {"echo": data, "image": os.environ.get("WORKER_IMAGE"), "worker": os.environ.get("RUNPOD_POD_ID"),
            "marker": os.environ.get("MARKER")}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
