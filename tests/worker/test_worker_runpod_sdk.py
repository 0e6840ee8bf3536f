"""The handler under the real `runpod` SDK, in subprocesses: `--test_input` local mode, the local worker
process (emulator + preflight + SDK), and a clean exit on SIGTERM in cloud mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from worker_harness import REPO, WORKER_DIR, job, s3_client, validate_log_lines, worker_env

from goldgate.local.image_store import build_local_image, resolve

TIMEOUT_S = 120


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    return resolve(build_local_image(WORKER_DIR, tmp_path / "home"), tmp_path / "home")


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "R2_", "COMFY_"))}
    env.update({"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true", "RUNPOD_SKIP_GPU_CHECK": "true",
                "PYTHONPATH": str(REPO)}, **values)
    return env


def _json_lines(stdout: str) -> str:
    """Our schema-v1 lines; the SDK prints its own plain-text lines alongside them."""
    return "\n".join(line for line in stdout.splitlines() if line.startswith('{"schema"'))


def test_the_handler_runs_under_the_sdk_test_input_mode(snapshot: Path, comfy, storage):
    env = _env(**worker_env(comfy.url, storage, snapshot / "models"))
    result = subprocess.run([sys.executable, "-m", "worker.handler", "--test_input", json.dumps(job())],
                            cwd=snapshot, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    head = s3_client(storage.endpoint_url).head_object(Bucket=storage.bucket, Key="results/job-1/0.png")
    assert head["ContentType"] == "image/png"
    events = [line["event"] for line in validate_log_lines(_json_lines(result.stdout))]
    assert events[0] == "worker_started" and "job_completed" in events
    assert storage.secret_access_key not in result.stdout + result.stderr


def test_an_invalid_job_fails_under_the_sdk_with_its_error(snapshot: Path, comfy, storage):
    env = _env(**worker_env(comfy.url, storage, snapshot / "models"))
    bad = job({"prompt": "x", "width": 1})
    result = subprocess.run([sys.executable, "-m", "worker.handler", "--test_input", json.dumps(bad)],
                            cwd=snapshot, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 1
    assert "input 'width' must be >= 512" in result.stdout + result.stderr


def test_a_worker_without_storage_exits_with_a_clear_message(snapshot: Path, comfy):
    env = _env(**worker_env(comfy.url, None, snapshot / "models"))
    result = subprocess.run([sys.executable, "-m", "worker.handler", "--test_input", json.dumps(job())],
                            cwd=snapshot, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 2
    assert "worker: cannot start: R2 storage is not configured" in result.stderr


def test_the_local_worker_process_runs_emulator_preflight_and_handler(snapshot: Path, storage):
    env = _env(**{k: v for k, v in worker_env("http://unused", storage, Path("/unused")).items()
                  if k not in ("COMFY_URL", "MODEL_ROOTS")}, COMFY_EMULATOR_STARTUP_S="0.5")
    result = subprocess.run([sys.executable, "-m", "goldgate.local.worker_process", "--snapshot", str(snapshot),
                             "--", "--test_input", json.dumps(job())],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = validate_log_lines(_json_lines(result.stdout))
    events = [line["event"] for line in lines]
    assert events.index("models_loaded") < events.index("job_started") < events.index("job_completed")
    assert {line["component"] for line in lines} == {"worker", "comfyui-emulator", "orchestrator"}
    s3_client(storage.endpoint_url).head_object(Bucket=storage.bucket, Key="results/job-1/0.png")


def test_the_local_worker_process_stops_when_preflight_fails(snapshot: Path, storage):
    (snapshot / "models" / "vae" / "ae.safetensors").unlink()
    env = _env(**{k: v for k, v in worker_env("http://unused", storage, Path("/unused")).items()
                  if k not in ("COMFY_URL", "MODEL_ROOTS")})
    result = subprocess.run([sys.executable, "-m", "goldgate.local.worker_process", "--snapshot", str(snapshot),
                             "--", "--test_input", json.dumps(job())],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 3
    assert "preflight failed" in result.stderr and "ae.safetensors" in result.stderr
    assert "job_started" not in result.stdout


def test_the_local_worker_process_refuses_a_non_snapshot(tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "goldgate.local.worker_process", "--snapshot", str(tmp_path)],
                            cwd=REPO, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 2 and "is not a worker snapshot" in result.stderr


class _NoJobs(BaseHTTPRequestHandler):
    """Just enough of RunPod's job-take and ping URLs for the SDK loop to idle: no job, ever."""

    def do_GET(self) -> None:
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.hits += 1  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def idle_runpod() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoJobs)
    server.hits = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_local_worker_process_exits_cleanly_on_sigterm(snapshot: Path, storage, idle_runpod):
    base = f"http://127.0.0.1:{idle_runpod.server_address[1]}"
    env = _env(**{k: v for k, v in worker_env("http://unused", storage, Path("/unused")).items()
                  if k not in ("COMFY_URL", "MODEL_ROOTS")},
               RUNPOD_WEBHOOK_GET_JOB=f"{base}/v2/ep/job-take/$ID", RUNPOD_WEBHOOK_PING=f"{base}/v2/ep/ping/$ID",
               RUNPOD_WEBHOOK_POST_OUTPUT=f"{base}/v2/ep/job-done/$ID", RUNPOD_POD_ID="worker-1",
               RUNPOD_AI_API_KEY="test-key", RUNPOD_ENDPOINT_ID="ep")
    proc = subprocess.Popen([sys.executable, "-m", "goldgate.local.worker_process", "--snapshot", str(snapshot)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            if '"event":"worker_started"' in line:
                break
        else:
            pytest.fail(f"worker never started: {proc.stderr.read()}")  # type: ignore[union-attr]
        polled = threading.Event()
        for _ in range(TIMEOUT_S * 10):  # the SDK loop is running once it has asked for a job
            if idle_runpod.hits > 0 or proc.poll() is not None:  # type: ignore[attr-defined]
                polled.set()
                break
            polled.wait(0.1)
        assert idle_runpod.hits > 0, "the SDK never polled the job-take URL"  # type: ignore[attr-defined]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT_S) == 0, proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
