"""The worker container's ComfyUI holds none of the worker's credentials: start.sh run for real, with a stand-in
`python` that records the environment each of ComfyUI, preflight and the handler was started with."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

WORKER_DIR = Path(__file__).resolve().parents[2] / "images" / "worker"

STAND_IN = r"""#!/usr/bin/env bash
case "$*" in
  *main.py*) env > "$RECORD/comfyui.env"; echo $$ > "$RECORD/comfyui.pid"; exec sleep 60 ;;
  *.preflight*) env > "$RECORD/preflight.env"; exit 0 ;;
  *.handler*)
    # Ends once ComfyUI has recorded its own (start.sh stops ComfyUI as it exits).
    until [ -e "$RECORD/comfyui.pid" ]; do sleep 0.02; done
    env > "$RECORD/handler.env"; exit 0 ;;
esac
exit 3
"""

# What RunPod and the stack put in a worker's environment: the handler's credentials, and one an operator added.
CREDENTIALS = {"R2_ACCESS_KEY_ID": "r2-key-id-5d1e0c", "R2_SECRET_ACCESS_KEY": "r2-secret-9f3a7b21c4",
               "RUNPOD_AI_API_KEY": "runpod-worker-key-77ab", "HF_TOKEN": "hf-token-0c4e99"}
PLAIN = {"R2_BUCKET": "goldgate-staging-results", "R2_ENDPOINT_URL": "http://127.0.0.1:9", "STACK": "staging"}


def _environ(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _run_start_script(tmp_path: Path) -> Path:
    python = tmp_path / "python"
    python.write_text(STAND_IN)
    python.chmod(0o755)
    record = tmp_path / "record"
    record.mkdir()
    env = {"PATH": os.environ["PATH"], "PYTHON": str(python), "COMFY_DIR": str(tmp_path), "APP_DIR": str(tmp_path),
           "RECORD": str(record), **CREDENTIALS, **PLAIN}
    # A session of its own: whatever it leaves running goes with the group below.
    proc = subprocess.Popen(["bash", str(WORKER_DIR / "start.sh")], env=env, cwd=tmp_path, start_new_session=True)
    try:
        proc.wait(60)  # the handler stand-in exits once ComfyUI's has recorded: start.sh ends with it
    except subprocess.TimeoutExpired:
        pytest.fail(f"start.sh did not end once its handler exited; it recorded {sorted(os.listdir(record))}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return record


def test_comfyui_starts_without_the_workers_credentials_and_the_handler_keeps_them(tmp_path: Path) -> None:
    record = _run_start_script(tmp_path)
    comfyui = _environ(record / "comfyui.env")
    held = sorted(name for name, value in CREDENTIALS.items() if value in (record / "comfyui.env").read_text())
    assert held == [], f"ComfyUI was started holding {held}"
    assert {k: comfyui.get(k) for k in PLAIN} == PLAIN  # the rest of its environment is as it was
    handler = _environ(record / "handler.env")
    assert {k: handler.get(k) for k in CREDENTIALS} == CREDENTIALS
    preflight = _environ(record / "preflight.env")
    assert {k: preflight.get(k) for k in CREDENTIALS} == CREDENTIALS


def test_the_pid_the_handler_watches_is_comfyuis_own(tmp_path: Path) -> None:
    # ComfyUI starts in a subshell that drops the credentials: it must exec, so COMFY_PID (what the handler watches
    # for a ComfyUI that exited, and what the traps signal) is ComfyUI's pid, not a shell's that outlives it.
    record = _run_start_script(tmp_path)
    assert _environ(record / "handler.env")["COMFY_PID"] == (record / "comfyui.pid").read_text().strip()
