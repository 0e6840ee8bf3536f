"""start.sh when ComfyUI dies: the container must end (RunPod then replaces the worker), not linger as a worker
that takes a job only to fail it. Run for real with the stand-in `python` of test_worker_start_script."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest
from test_worker_start_script import STAND_IN, WAIT_S, _wait_for
from worker_harness import WORKER_DIR

# ComfyUI's stand-in crashes (exit 7, as on a CUDA or out-of-memory fault) once the test drops a file named
# `crash-comfy`; the handler's stand-in records a SIGTERM and drains as the SDK does.
CRASHING_COMFY = STAND_IN.replace(
    "while true; do sleep 0.05; done ;;\n  *.preflight*)",
    "until [ -e crash-comfy ]; do sleep 0.05; done; echo comfy-crashed >> \"$events\"; exit 7 ;;\n  *.preflight*)",
    1)
assert CRASHING_COMFY != STAND_IN, "the stand-in ComfyUI changed: make it crash on `crash-comfy` again"


def _run(tmp_path: Path, stand_in: str) -> tuple[subprocess.Popen, Path]:
    python = tmp_path / "python"
    python.write_text(stand_in)
    python.chmod(0o755)
    events = tmp_path / "events"
    events.touch()
    env = {**os.environ, "PYTHON": str(python), "COMFY_DIR": str(tmp_path), "EVENTS": str(events),
           "APP_DIR": str(tmp_path)}
    proc = subprocess.Popen(["bash", str(WORKER_DIR / "start.sh")], env=env, cwd=tmp_path, start_new_session=True,
                            stderr=subprocess.PIPE, text=True)
    return proc, events


def _exit_status(proc: subprocess.Popen, events: Path) -> tuple[int, str]:
    """start.sh's status and stderr; a start.sh still running after WAIT_S lingers (the defect under test)."""
    try:
        _, stderr = proc.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"start.sh still runs {WAIT_S} s after ComfyUI died: the worker lingers instead of exiting "
                    f"so RunPod replaces it; events: {events.read_text().split()}")
    return proc.returncode, stderr


@contextlib.contextmanager
def _cleanup(proc: subprocess.Popen):
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):  # the whole group has exited
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def test_comfyui_dying_while_the_handler_runs_stops_the_handler_and_ends_the_container(tmp_path):
    proc, events = _run(tmp_path, CRASHING_COMFY)
    with _cleanup(proc):
        _wait_for(events, "handler-started", proc)
        (tmp_path / "crash-comfy").touch()
        status, stderr = _exit_status(proc, events)
    lines = events.read_text().split()
    assert status != 0, "a worker whose ComfyUI died must not exit as if stopped on purpose"
    # The handler is stopped as RunPod stops it (SIGTERM: the SDK reports the job in progress), not killed.
    assert lines[lines.index("comfy-crashed"):] == ["comfy-crashed", "handler-term", "handler-drained"], lines
    assert "ComfyUI exited (status 7)" in stderr, stderr


def test_comfyui_dying_while_preflight_runs_starts_no_handler(tmp_path):
    # Preflight reads only the model tree, so it passes even when ComfyUI crashed meanwhile (no usable GPU). It
    # ends once ComfyUI is gone, not merely once ComfyUI said it crashes: the stand-in writes that line before it
    # exits, and start.sh checked in between under load (ComfyUI dying after the check is the other test's case).
    stand_in = CRASHING_COMFY.replace(
        "*.preflight*) exit 0 ;;",
        "*.preflight*) touch crash-comfy; until grep -q comfy-crashed \"$events\" && ! kill -0 \"$COMFY_PID\" "
        "2>/dev/null; do sleep 0.05; done; exit 0 ;;")
    proc, events = _run(tmp_path, stand_in)
    with _cleanup(proc):
        status, stderr = _exit_status(proc, events)
    assert status == 1
    assert "handler-started" not in events.read_text().split(), "a handler without ComfyUI would take a job"
    assert "ComfyUI exited (status 7) before the worker took a job" in stderr, stderr


def test_the_handler_exiting_on_its_own_still_ends_the_container_with_its_status_and_stops_comfyui(tmp_path):
    # The SDK leaves after a job that asked RunPod to replace the worker (refresh_worker): ComfyUI must not
    # outlive it, and its status is the container's.
    stand_in = STAND_IN.replace("echo handler-started >> \"$events\"",
                                "echo handler-started >> \"$events\"; sleep 0.2; exit 3")
    assert stand_in != STAND_IN
    proc, events = _run(tmp_path, stand_in)
    with _cleanup(proc):
        status, _ = _exit_status(proc, events)
    assert status == 3
    assert "comfy-stopped" in events.read_text().split()
