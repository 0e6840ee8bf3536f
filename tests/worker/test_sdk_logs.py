"""Every line a worker process writes is schema v1: the handler's own, the runpod SDK's logger, the SDK's bare
prints, Python warnings/logging/uncaught exceptions, the ComfyUI emulator and the local worker launcher."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from worker_harness import REPO, SECRET_KEY, WORKER_DIR, job, validate_log_lines, worker_env

from goldgate.local.image_store import build_local_image, resolve
from images.worker import sdk_logs
from images.worker.logs import WorkerLog

TIMEOUT_S = 120


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    return resolve(build_local_image(WORKER_DIR, tmp_path / "home"), tmp_path / "home")


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "R2_", "COMFY_"))}
    env.update({"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true", "RUNPOD_SKIP_GPU_CHECK": "true",
                "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "default"}, **values)
    return env


def _launcher_env(storage: Any, **values: str) -> dict[str, str]:
    """The environment the RunPod emulator gives `goldgate.local.worker_process` (which sets COMFY_*)."""
    base = {k: v for k, v in worker_env("http://unused", storage, Path("/unused")).items()
            if k not in ("COMFY_URL", "MODEL_ROOTS")}
    return _env(**base, **values)


def _all_lines(*outputs: str) -> list[dict[str, Any]]:
    """Every non-empty line of every stream, nothing filtered out, each valid against schema v1."""
    lines = [line for text in outputs for line in validate_log_lines(text)]
    assert lines, "the process wrote nothing"
    return lines


# -- in a subprocess, under the real SDK -------------------------------------------------------------------

def test_every_line_of_the_handler_under_the_sdk_test_input_mode_is_v1(snapshot: Path, comfy, storage):
    # DEBUG: the SDK's chattiest level, so every kind of SDK line it has for a job shows up.
    env = _env(**worker_env(comfy.url, storage, snapshot / "models"), RUNPOD_LOG_LEVEL="DEBUG")
    result = subprocess.run([sys.executable, "-m", "worker.handler", "--test_input", json.dumps(job())],
                            cwd=snapshot, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = _all_lines(result.stdout, result.stderr)
    events = [line["event"] for line in lines]
    assert "worker_started" in events and "job_completed" in events
    sdk = [line for line in lines if line["event"].startswith("runpod_sdk.")]
    assert {"runpod_sdk.debug", "runpod_sdk.info"} <= {line["event"] for line in sdk}
    assert any(line["message"] == "Started." and line["runpod_job_id"] == "rp-job-1" for line in sdk)
    assert all(line["component"] == "worker" and line["stack"] == "local" for line in sdk)
    banner = [line for line in lines if line["event"] == "stdout_line"]
    assert any("Starting Serverless Worker" in line["message"] for line in banner)
    assert SECRET_KEY not in result.stdout + result.stderr


def test_a_failing_job_and_a_worker_that_cannot_start_still_write_only_v1(snapshot: Path, comfy, storage):
    env = _env(**worker_env(comfy.url, storage, snapshot / "models"))
    bad = subprocess.run([sys.executable, "-m", "worker.handler", "--test_input",
                          json.dumps(job({"prompt": "x", "width": 1}))],
                         cwd=snapshot, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert bad.returncode == 1
    lines = _all_lines(bad.stdout, bad.stderr)
    assert any(line["level"] == "error" and "must be >= 512" in (line["message"] or "") for line in lines
               if line["event"].startswith("runpod_sdk."))

    no_storage = _env(**worker_env(comfy.url, None, snapshot / "models"))
    refused = subprocess.run([sys.executable, "-m", "worker.handler", "--test_input", json.dumps(job())],
                             cwd=snapshot, env=no_storage, capture_output=True, text=True, timeout=TIMEOUT_S,
                             check=False)
    assert refused.returncode == 2
    [line] = _all_lines(refused.stdout, refused.stderr)
    assert line["event"] == "worker_cannot_start" and "R2 storage is not configured" in line["message"]


class _OneJob(BaseHTTPRequestHandler):
    """RunPod's worker-facing URLs, just enough for the SDK: one job from job-take, then none; results kept."""

    def do_GET(self) -> None:
        payload = None
        if "/job-take/" in self.path:
            with self.server.lock:  # type: ignore[attr-defined]
                payload, self.server.job = self.server.job, None  # type: ignore[attr-defined]
        if payload is None:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if "/job-done/" in self.path:
            self.server.results.append(json.loads(body))  # type: ignore[attr-defined]
            self.server.done.set()  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def runpod_with_one_job() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OneJob)
    server.lock, server.job, server.results, server.done = (  # type: ignore[attr-defined]
        threading.Lock(), job(job_id="job-cloud"), [], threading.Event())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_every_line_of_a_cloud_mode_worker_process_is_v1(snapshot: Path, storage, runpod_with_one_job, tmp_path):
    # What the RunPod emulator runs: launcher + ComfyUI emulator + preflight + handler, with RUNPOD_ENDPOINT_ID
    # set (the SDK's own JSON mode) and stdout/stderr in one log file.
    base = f"http://127.0.0.1:{runpod_with_one_job.server_address[1]}"
    env = _launcher_env(storage, COMFY_EMULATOR_STARTUP_S="0",
                        RUNPOD_WEBHOOK_GET_JOB=f"{base}/v2/ep/job-take/$ID?",
                        RUNPOD_WEBHOOK_PING=f"{base}/v2/ep/ping/$ID",
                        RUNPOD_WEBHOOK_POST_OUTPUT=f"{base}/v2/ep/job-done/$ID?", RUNPOD_POD_ID="worker-1",
                        RUNPOD_AI_API_KEY="test-key", RUNPOD_ENDPOINT_ID="ep")
    log_path = tmp_path / "worker-1.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "goldgate.local.worker_process", "--snapshot", str(snapshot)],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert runpod_with_one_job.done.wait(TIMEOUT_S), log_path.read_text()  # type: ignore[attr-defined]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT_S) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    [result] = runpod_with_one_job.results  # type: ignore[attr-defined]
    assert "error" not in result, result
    lines = _all_lines(log_path.read_text())
    assert {line["component"] for line in lines} == {"worker", "comfyui-emulator", "orchestrator"}
    sdk = [line for line in lines if line["event"].startswith("runpod_sdk.")]
    assert {"Started.", "Finished."} <= {line["message"] for line in sdk if line["runpod_job_id"] == "rp-job-cloud"}
    assert "runpod_sdk.debug" not in {line["event"] for line in sdk}  # RUNPOD_LOG_LEVEL unset: INFO, not DEBUG
    events = [line["event"] for line in lines]
    assert events[-1] == "local_worker_stopped"
    assert SECRET_KEY not in log_path.read_text()


def test_a_worker_process_that_refuses_to_start_says_why_in_v1(snapshot: Path, storage, tmp_path):
    (snapshot / "models" / "vae" / "ae.safetensors").unlink()
    failed = subprocess.run([sys.executable, "-m", "goldgate.local.worker_process", "--snapshot", str(snapshot)],
                            cwd=REPO, env=_launcher_env(storage), capture_output=True, text=True,
                            timeout=TIMEOUT_S, check=False)
    assert failed.returncode == 3
    lines = _all_lines(failed.stdout, failed.stderr)
    [refusal] = [line for line in lines if line["event"] == "local_worker_preflight_failed"]
    assert "ae.safetensors" in refusal["message"]

    for bad_env, path in ((_launcher_env(storage), tmp_path),
                          (_launcher_env(storage, COMFY_EMULATOR_STARTUP_S="soon"), snapshot)):
        refused = subprocess.run([sys.executable, "-m", "goldgate.local.worker_process", "--snapshot", str(path)],
                                 cwd=REPO, env=bad_env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        assert refused.returncode == 2
        [line] = _all_lines(refused.stdout, refused.stderr)
        assert line["event"] == "local_worker_refused" and line["level"] == "error"


# -- in-process: each route on its own ---------------------------------------------------------------------

@contextlib.contextmanager
def _routed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """sdk_logs.install over two in-memory streams standing in for the process's stdout and stderr.
    A context manager, not a fixture: pytest puts its own sys.stdout back between setup and call."""
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.delenv("RUNPOD_LOG_LEVEL", raising=False)
    monkeypatch.delenv("RUNPOD_DEBUG_LEVEL", raising=False)
    log = WorkerLog(secrets=(SECRET_KEY,), stack="local", workflow_version="2026.11.0",
                    worker_image_tag="local/worker@sha256:" + "ab" * 32)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    undo = sdk_logs.install(log)
    try:
        yield out, err
    finally:
        undo()
        sys.stdout, sys.stderr = saved


def test_the_sdk_logger_writes_v1_lines_with_runpods_job_id_and_no_secret(monkeypatch):
    from runpod.serverless.modules.rp_logger import RunPodLogger

    with _routed(monkeypatch) as (out, _):
        sdk = RunPodLogger()
        sdk.info(f"connecting with {SECRET_KEY}", "rp-42")
        sdk.warn("slow job-take")
        sdk.error("Failed to return job results.", "rp-42")
        sdk.debug("rp_job | get_job: ...")  # below the default INFO threshold
    lines = validate_log_lines(out.getvalue())
    assert [(line["event"], line["level"]) for line in lines] == [
        ("runpod_sdk.info", "info"), ("runpod_sdk.warning", "warning"), ("runpod_sdk.error", "error")]
    assert lines[0]["message"] == "connecting with [redacted]" and lines[0]["runpod_job_id"] == "rp-42"
    assert lines[0]["job_id"] is None and lines[1]["runpod_job_id"] is None
    assert SECRET_KEY not in out.getvalue()


def test_prints_warnings_logging_and_crashes_become_v1_lines(monkeypatch):
    with _routed(monkeypatch) as (out, err):
        print("a stray", end="")
        WorkerLog(stack="local").info("own_line")  # already v1: passed through whole, not wrapped nor split
        print(" print\n\nand another")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("this API is deprecated", DeprecationWarning, stacklevel=1)
        logging.getLogger("botocore.test").error("bucket unreachable with %s", SECRET_KEY)
        print("to stderr", file=sys.stderr)
        try:
            raise RuntimeError("boom")
        except RuntimeError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        thread = threading.Thread(target=lambda: 1 / 0, name="renderer")
        thread.start()
        thread.join()
        sys.stdout.flush()
    lines = validate_log_lines(out.getvalue()) + validate_log_lines(err.getvalue())
    by_event = {}
    for line in lines:
        by_event.setdefault(line["event"], []).append(line)
    assert [line["message"] for line in by_event["stdout_line"]] == ["a stray print", "and another"]
    assert by_event["own_line"][0]["stack"] == "local"
    assert by_event["stderr_line"][0]["message"] == "to stderr"
    assert by_event["python_warning"][0]["message"] == "DeprecationWarning: this API is deprecated"
    assert by_event["python_log"][0]["level"] == "error" and "[redacted]" in by_event["python_log"][0]["message"]
    assert by_event["worker_crashed"][0]["error"] == {"type": "RuntimeError", "message": "boom"}
    assert "Traceback" in by_event["worker_crashed"][0]["data"]["traceback"]
    assert "renderer" in by_event["thread_crashed"][0]["message"]
    assert SECRET_KEY not in out.getvalue() + err.getvalue()


def test_lines_from_many_threads_never_interleave(monkeypatch):
    def chatter(n: int) -> None:
        for i in range(200):
            print(f"thread {n} line {i}")

    with _routed(monkeypatch) as (out, _):
        threads = [threading.Thread(target=chatter, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    messages = [line["message"] for line in validate_log_lines(out.getvalue())]
    assert sorted(messages) == sorted(f"thread {n} line {i}" for n in range(4) for i in range(200))


def test_undo_puts_the_process_output_back(monkeypatch):
    from runpod.serverless.modules.rp_logger import RunPodLogger

    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    undo = sdk_logs.install(WorkerLog())
    assert sys.stdout is not out and "log" in vars(RunPodLogger())
    undo()
    assert sys.stdout is out and "log" not in vars(RunPodLogger())
