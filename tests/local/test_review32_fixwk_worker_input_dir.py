"""A local worker (goldgate.local.worker_process) removes a job's input image from its own ComfyUI emulator's input
folder and from no other: the emulator's output folder is a temporary one in TMPDIR, so the `input` folder beside it
is TMPDIR's own, which every worker of the host shares."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store

REPO = Path(__file__).resolve().parents[2]
ACCESS_KEY, SECRET_KEY = "AKIDGOLDGATEFIXWK001", "fixwk-secret-value-never-logged"
BUCKET, KEY = "results", "inputs/" + "c" * 32 + ".png"


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 64), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_local_workers_img2img_job_leaves_another_workers_file_in_tmpdirs_input_folder(
        tmp_path: Path, s3_endpoint: str) -> None:
    home = tmp_path / "home"
    snapshot = image_store.resolve(image_store.build_local_image(WORKER_SOURCE, home), home)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=_png(), ContentType="image/png")
    tmpdir = tmp_path / "tmpdir"
    (tmpdir / "input").mkdir(parents=True)
    bystander = tmpdir / "input" / "job-1-image.png"  # the name this job's upload gets
    bystander.write_bytes(b"another worker's upload")
    env = {**os.environ, "COMFY_EMULATOR_STARTUP_S": "0", "STACK": "staging", "TMPDIR": str(tmpdir),
           "R2_ENDPOINT_URL": s3_endpoint, "R2_BUCKET": BUCKET, "R2_ACCESS_KEY_ID": ACCESS_KEY,
           "R2_SECRET_ACCESS_KEY": SECRET_KEY}
    for key in [k for k in env if k.startswith(("RUNPOD_", "GOLDGATE_LIFELINE", "COMFY_INPUT", "COMFY_OUTPUT"))]:
        del env[key]
    job = {"input": {"workflow_id": "sdxl-img2img", "workflow_version": "sdxl-img2img@1.0.0",
                     "inputs": {"image": KEY, "prompt": "a lighthouse"}, "job_id": "job-1",
                     "trace_id": "0123456789abcdef0123456789abcdef", "result_prefix": "results/job-1/"}}
    done = subprocess.run([sys.executable, "-m", "goldgate.local.worker_process", "--snapshot", str(snapshot),
                           "--", "--test_input", json.dumps(job)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(raw)["event"] for raw in done.stdout.splitlines() if raw.startswith("{")]
    assert "job.input_image.loaded" in events and "job_completed" in events, done.stdout[-2000:]
    assert "inputs_not_removed" not in events
    assert bystander.read_bytes() == b"another worker's upload"
