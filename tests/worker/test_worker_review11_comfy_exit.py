"""A ComfyUI that crashes while it starts (no usable GPU, out of memory) never answers: the worker must say so at
once and retire, instead of making each job wait out the whole readiness bound for a server that is gone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_worker_start_script import STAND_IN, _wait_for
from worker_harness import WORKER_DIR, job

from images.worker.config import ConfigError, load_config
from images.worker.handler import run_job


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("reaped", [True, False], ids=["reaped", "zombie"])
def test_a_comfyui_that_exited_while_starting_fails_the_job_at_once_and_retires_the_worker(
        models_dir, runtime_factory, reaped):
    comfy = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    if reaped:
        comfy.wait()
    else:  # exited, but start.sh has not reaped it yet
        deadline = time.monotonic() + 30
        while Path(f"/proc/{comfy.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the stand-in ComfyUI did not exit"
            time.sleep(0.01)
    try:
        runtime = runtime_factory(_closed_port_url(), models_dir, COMFY_READY_TIMEOUT_S="5",
                                  COMFY_PID=str(comfy.pid))
        out = run_job(job(), runtime)
    finally:
        comfy.wait()
    assert "ComfyUI exited before it answered" in out["error"], out
    assert "was not ready after" not in out["error"], out
    assert out.get("refresh_worker") is True


def test_a_comfyui_still_loading_is_waited_for(models_dir, comfy_factory, runtime_factory):
    loading = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        comfy = comfy_factory(models_dir, startup_delay_s=1.0)
        out = run_job(job(), runtime_factory(comfy.url, models_dir, COMFY_READY_TIMEOUT_S="30",
                                             COMFY_PID=str(loading.pid)))
    finally:
        loading.kill()
        loading.wait()
    assert "error" not in out, out


def test_a_malformed_comfy_pid_is_named():
    with pytest.raises(ConfigError, match="COMFY_PID='comfy' is not a process id"):
        load_config({"COMFY_PID": "comfy"})


def test_the_start_script_tells_the_handler_which_process_is_comfyui(tmp_path):
    python = tmp_path / "python"
    python.write_text(STAND_IN.replace("echo comfy-started", "echo comfy-pid=$$ >> \"$events\"; echo comfy-started")
                      .replace("echo handler-started", "echo handler-sees=${COMFY_PID:-none} >> \"$events\"; "
                                                       "echo handler-started"))
    python.chmod(0o755)
    events = tmp_path / "events"
    events.touch()
    env = {**os.environ, "PYTHON": str(python), "COMFY_DIR": str(tmp_path), "EVENTS": str(events),
           "APP_DIR": str(tmp_path)}
    env.pop("COMFY_PID", None)
    proc = subprocess.Popen(["bash", str(WORKER_DIR / "start.sh")], env=env, cwd=tmp_path)
    try:
        _wait_for(events, "comfy-started", proc)
        _wait_for(events, "handler-started", proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = events.read_text().split()
    comfy_pid = next(line.split("=", 1)[1] for line in lines if line.startswith("comfy-pid="))
    assert f"handler-sees={comfy_pid}" in lines, lines
