"""start.sh and SIGTERM before the handler runs: RunPod may stop a worker while it starts (a scale-down during a cold
start). Run for real, with the stand-in `python` of test_worker_start_script.py (ComfyUI, preflight, handler)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from test_worker_start_script import STAND_IN, _wait_for
from worker_harness import WORKER_DIR

# Preflight that takes its time (it reads every model's header; with --verify-sha256 it hashes tens of GB): it says it
# started, then runs until it is stopped, and says so.
SLOW_PREFLIGHT = ("*.preflight*) trap 'echo preflight-stopped >> \"$events\"; exit 0' TERM; "
                  "echo preflight-started >> \"$events\"; while true; do sleep 0.05; done ;;")


def test_sigterm_while_preflight_runs_stops_comfyui_and_preflight_and_starts_no_handler(tmp_path: Path) -> None:
    # Before: SIGTERM had no trap until the handler started. bash exited on it and its EXIT trap stopped ComfyUI, but
    # preflight, run in the foreground, was left running (orphaned here; SIGKILLed with the container in one:
    # tests/release/test_review30_img_container_signals.py), and no line said why the worker ended.
    python = tmp_path / "python"
    python.write_text(STAND_IN.replace("*.preflight*) exit 0 ;;", SLOW_PREFLIGHT))
    python.chmod(0o755)
    events = tmp_path / "events"
    events.touch()
    env = {**os.environ, "PYTHON": str(python), "COMFY_DIR": str(tmp_path), "EVENTS": str(events),
           "APP_DIR": str(tmp_path)}
    log = tmp_path / "stderr"
    with log.open("w") as stderr_file:   # a file, not a pipe: a child left running would hold a pipe open
        proc = subprocess.Popen(["bash", str(WORKER_DIR / "start.sh")], env=env, cwd=tmp_path, start_new_session=True,
                                stderr=stderr_file)
    try:
        _wait_for(events, "comfy-started", proc)
        _wait_for(events, "preflight-started", proc)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        stderr = log.read_text()
        # 143 = 128 + SIGTERM: the container stopped because it was told to, not because it failed.
        assert proc.returncode == 128 + signal.SIGTERM, stderr
        happened = events.read_text().split()
        assert "comfy-stopped" in happened and "preflight-stopped" in happened, happened
        assert "handler-started" not in happened, happened
        assert "start.sh: SIGTERM before the handler started" in stderr, stderr
    finally:
        with contextlib.suppress(ProcessLookupError):  # the whole group has exited
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
