"""start.sh run for real, with a stand-in `python` that plays ComfyUI, preflight and the handler and
writes what happens to it, in order, to an events file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from worker_harness import WORKER_DIR

STAND_IN = r"""#!/usr/bin/env bash
events="$EVENTS"
case "$*" in
  *main.py*)
    trap 'echo comfy-stopped >> "$events"; exit 0' TERM
    echo comfy-started >> "$events"
    while true; do sleep 0.05; done ;;
  *.preflight*) exit 0 ;;
  *.handler*)
    # The SDK on SIGTERM: stop taking jobs, finish the one in progress (it needs ComfyUI), exit 0.
    trap 'echo handler-term >> "$events"; sleep 1; echo handler-drained >> "$events"; exit 0' TERM
    echo handler-started >> "$events"
    while true; do sleep 0.05; done ;;
esac
exit 3
"""


def _start(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    python = tmp_path / "python"
    python.write_text(STAND_IN)
    python.chmod(0o755)
    events = tmp_path / "events"
    events.touch()
    env = {**os.environ, "PYTHON": str(python), "COMFY_DIR": str(tmp_path), "EVENTS": str(events),
           "APP_DIR": str(tmp_path)}
    # A session of its own, so a failed test can kill start.sh and its children at once (below).
    proc = subprocess.Popen(["bash", str(WORKER_DIR / "start.sh")], env=env, cwd=tmp_path, start_new_session=True)
    return proc, events


# The stand-ins start at once: a start.sh that has not started them by then never will (the suite has no
# per-test timeout, so an unbounded wait would hang it).
WAIT_S = 30


def _wait_for(events: Path, line: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_S
    while line not in events.read_text().split():
        assert proc.poll() is None, f"start.sh exited early ({proc.returncode}): {events.read_text()}"
        if time.monotonic() >= deadline:
            pytest.fail(f"start.sh wrote no {line!r} to the events file within {WAIT_S} s; it wrote "
                        f"{events.read_text().split()}")
        try:
            proc.wait(0.05)
        except subprocess.TimeoutExpired:
            pass


def test_sigterm_lets_the_handler_finish_its_job_before_comfyui_stops(tmp_path):
    # RunPod stops a worker with SIGTERM to the container's first process. The handler must get it and
    # be waited for (the SDK finishes the job in progress), and ComfyUI must outlive that job: a start
    # script that exits at once ends the container, and with it the job, mid-render.
    proc, events = _start(tmp_path)
    try:
        _wait_for(events, "comfy-started", proc)
        _wait_for(events, "handler-started", proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        after_start = [e for e in events.read_text().split() if not e.endswith("-started")]
        assert after_start == ["handler-term", "handler-drained", "comfy-stopped"]
    finally:
        # A SIGKILLed start.sh runs no EXIT trap: its ComfyUI stand-in would loop on, orphaned.
        with contextlib.suppress(ProcessLookupError):  # the whole group has exited
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_failed_preflight_does_not_claim_checkpoints_are_missing_when_they_are_not(tmp_path):
    # The start script cannot know which model preflight missed; preflight's own report says it (and says
    # "No checkpoint models appear to be available" only when the checkpoint folder is empty, see
    # test_worker_preflight). Stating that phrase for a missing LoRA sends the operator after the wrong file.
    python = tmp_path / "python"
    # Preflight runs while ComfyUI loads: it fails once ComfyUI is up (before that, stopping ComfyUI would
    # kill it before its stand-in could record the stop, and the check below would race).
    python.write_text(STAND_IN.replace("*.preflight*) exit 0 ;;",
                                       "*.preflight*) until grep -q comfy-started \"$events\"; do sleep 0.05; done; "
                                       "echo 'problem: loras/flux_realism_lora.safetensors: not found' >&2; exit 1 ;;"))
    python.chmod(0o755)
    (tmp_path / "events").touch()
    env = {**os.environ, "PYTHON": str(python), "COMFY_DIR": str(tmp_path), "EVENTS": str(tmp_path / "events"),
           "APP_DIR": str(tmp_path)}
    done = subprocess.run(["bash", str(WORKER_DIR / "start.sh")], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "FATAL: worker preflight failed" in done.stderr
    assert "No checkpoint models appear to be available" not in done.stderr, done.stderr
    assert "comfy-stopped" in (tmp_path / "events").read_text().split()  # ComfyUI does not outlive the script
