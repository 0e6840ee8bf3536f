"""Every line a worker container writes at start-up is one schema-v1 JSON object: start.sh's own (`worker.start.*`)
and each line of ComfyUI's output (`comfyui.output`). start.sh run for real, with a stand-in `python` that plays
ComfyUI, preflight and the handler, and runs the real relay (`python -m images.worker.sdk_logs comfyui-output`).

Before: start.sh wrote plain text (`FATAL: ...`, `start.sh: SIGTERM ...`) and ComfyUI's output went out as it came,
so an operator's pipeline that parses the worker's log as JSON dropped, or choked on, exactly the lines that say why a
worker never took a job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_review12_start_script import _cleanup
from test_worker_start_script import WAIT_S, _wait_for
from worker_harness import REPO, WORKER_DIR, validate_log_lines

SECRET = "r2-secret-6f1d0c9a77"
# What ComfyUI prints: its banner, a warning, a progress bar redrawn with \r, a line of odd characters (quotes, a
# backslash, a tab, an escape character, a byte that is no UTF-8), a credential a custom node read from somewhere,
# and, when it is stopped, its last words on stderr.
COMFY_LINES = r"""
printf 'Total VRAM 24217 MB, total RAM 64214 MB\n'
printf 'WARNING: this card does not support bf16\n' >&2
printf '  0%%|          | 0/25\r 40%%|####      | 10/25\r100%%|##########| 25/25\n' >&2
printf 'odd "quote" \\ back\ttab \033[0m \377 end\n'
printf 'a node read the key %s\n' "$LEAKED"
"""
STAND_IN = r"""#!/usr/bin/env bash
events="$EVENTS"
case "$*" in
  *main.py*)
    trap 'echo "Stopped server" >&2; echo comfy-stopped >> "$events"; exit 0' TERM
    {comfy}
    echo comfy-started >> "$events"
    while true; do sleep 0.05; done ;;
  *.sdk_logs*) {relay} ;;
  *.preflight*) exit 0 ;;
  *.handler*)
    trap 'echo handler-term >> "$events"; exit 0' TERM
    echo handler-started >> "$events"
    while true; do sleep 0.05; done ;;
esac
exit 3
"""
RELAY = f'exec {sys.executable} "$@"'


def _start(tmp_path: Path, comfy: str = COMFY_LINES, relay: str = RELAY) -> tuple[subprocess.Popen, Path]:
    python = tmp_path / "python"
    python.write_text(STAND_IN.replace("{comfy}", comfy).replace("{relay}", relay))
    python.chmod(0o755)
    events = tmp_path / "events"
    events.touch()
    env = {**os.environ, "PYTHON": str(python), "COMFY_DIR": str(tmp_path), "EVENTS": str(events),
           "APP_DIR": str(tmp_path), "WORKER_PKG": "images.worker", "PYTHONPATH": str(REPO),
           "STACK": "staging", "WORKFLOW_VERSION": "2026.11.0", "WORKER_IMAGE_TAG": "repo/worker:2026.11.0-abc",
           "R2_ENDPOINT_URL": "http://127.0.0.1:9", "R2_BUCKET": "results", "R2_ACCESS_KEY_ID": "r2-key-id-41c2",
           "R2_SECRET_ACCESS_KEY": SECRET, "LEAKED": SECRET}
    with (tmp_path / "stdout").open("wb") as out, (tmp_path / "stderr").open("wb") as err:
        # Files, not pipes: a child left running would hold a pipe open. A session of its own, killed below.
        proc = subprocess.Popen(["bash", str(WORKER_DIR / "start.sh")], env=env, cwd=tmp_path, stdout=out, stderr=err,
                                start_new_session=True)
    return proc, events




def _stop(proc: subprocess.Popen, events: Path) -> int:
    _wait_for(events, "handler-started", proc)
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(WAIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"start.sh did not end {WAIT_S} s after SIGTERM; events: {events.read_text().split()}")


def _lines(tmp_path: Path) -> list[dict]:
    """Every line start.sh's container writes, stdout then stderr, each validated against schema v1."""
    return [*validate_log_lines((tmp_path / "stdout").read_bytes().decode("utf-8")),
            *validate_log_lines((tmp_path / "stderr").read_bytes().decode("utf-8"))]


def test_every_start_up_line_is_v1_and_comfyuis_output_is_one_event_a_line(tmp_path: Path) -> None:
    proc, events = _start(tmp_path)
    with _cleanup(proc):
        assert _stop(proc, events) == 0
    lines = _lines(tmp_path)
    comfy = [(line["level"], line["message"]) for line in lines if line["event"] == "comfyui.output"]
    assert comfy == [
        ("info", "Total VRAM 24217 MB, total RAM 64214 MB"),
        ("warning", "WARNING: this card does not support bf16"),
        ("info", "  0%|          | 0/25"), ("info", " 40%|####      | 10/25"), ("info", "100%|##########| 25/25"),
        ("info", 'odd "quote" \\ back\ttab \x1b[0m \ufffd end'),
        ("info", "a node read the key [redacted]"),
        ("info", "Stopped server"),   # ComfyUI's last words, written after start.sh was told to stop
    ]
    assert SECRET not in (tmp_path / "stdout").read_text() + (tmp_path / "stderr").read_text()
    own = [line["event"] for line in lines if line["event"].startswith("worker.start.")]
    assert own == ["worker.start.comfyui_launched", "worker.start.handler_launched", "worker.start.handler_exited"]
    for line in lines:
        assert (line["component"], line["stack"], line["workflow_version"], line["job_id"]) == \
            ("worker", "staging", "2026.11.0", None), line
    exited = next(line for line in lines if line["event"] == "worker.start.handler_exited")
    assert (exited["level"], exited["data"]) == ("info", {"exit_status": 0})
    assert events.read_text().split()[-2:] == ["handler-term", "comfy-stopped"]


def test_comfyui_writing_more_than_a_pipe_holds_loses_no_line_and_is_not_held_up(tmp_path: Path) -> None:
    # 3,000 lines (about 180 KB, three times a pipe's buffer) before ComfyUI says it started: a relay that stopped
    # reading would hold ComfyUI at its next write, and the handler would never start.
    many = 'for i in $(seq 1 3000); do echo "loading block $i of 3000 ................................."; done'
    proc, events = _start(tmp_path, comfy=many)
    with _cleanup(proc):
        _wait_for(events, "comfy-started", proc)   # every line written
        assert _stop(proc, events) == 0
    said = [line["message"] for line in _lines(tmp_path) if line["event"] == "comfyui.output"]
    assert said[:-1] == [f"loading block {i} of 3000 ................................." for i in range(1, 3001)]


def test_without_the_relay_comfyuis_lines_still_come_out_whole_and_comfyui_keeps_running(tmp_path: Path) -> None:
    # A relay that cannot start (no python on the path, a package that fails to import): ComfyUI's output must not
    # be lost, nor kill ComfyUI on its next write to a pipe nobody reads.
    proc, events = _start(tmp_path, relay="echo 'relay: cannot import' >&2; exit 3")
    with _cleanup(proc):
        _wait_for(events, "comfy-started", proc)
        assert _stop(proc, events) == 0
    out = (tmp_path / "stdout").read_bytes().decode("utf-8", "replace").splitlines()
    assert out[:2] == ["Total VRAM 24217 MB, total RAM 64214 MB", "WARNING: this card does not support bf16"]
    assert out[-2:] == ["a node read the key " + SECRET, "Stopped server"]
    assert "comfy-stopped" in events.read_text().split()
    stderr = (tmp_path / "stderr").read_text().splitlines()
    own = [json.loads(line)["event"] for line in stderr if line.startswith("{")]
    assert own == ["worker.start.comfyui_launched", "worker.start.handler_launched", "worker.start.handler_exited"]


def test_comfyui_crashing_leaves_its_traceback_and_the_reason_as_v1_lines(tmp_path: Path) -> None:
    crash = COMFY_LINES + r"""
    echo comfy-started >> "$events"
    until [ -e crash-comfy ]; do sleep 0.05; done
    printf 'Traceback (most recent call last):\n  File "main.py", line 1, in <module>\n' >&2
    printf 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n' >&2
    exit 7
"""
    proc, events = _start(tmp_path, comfy=crash)
    with _cleanup(proc):
        _wait_for(events, "handler-started", proc)
        (tmp_path / "crash-comfy").touch()
        try:
            assert proc.wait(WAIT_S) == 1
        except subprocess.TimeoutExpired:
            pytest.fail("start.sh lingers after ComfyUI died")
    lines = _lines(tmp_path)
    comfy = [(line["level"], line["message"]) for line in lines if line["event"] == "comfyui.output"]
    assert comfy[-3:] == [("error", "Traceback (most recent call last):"),
                          ("info", '  File "main.py", line 1, in <module>'),
                          ("error", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")]
    [exited] = [line for line in lines if line["event"] == "worker.start.comfyui_exited"]
    assert (exited["level"], exited["data"]) == ("error", {"exit_status": 7, "handler_started": True})
    assert exited["message"].startswith("FATAL: ComfyUI exited (status 7) while the worker ran")


def test_a_failed_preflight_is_one_v1_line_from_start_sh_after_preflights_own(tmp_path: Path) -> None:
    python_fails = r"""*.preflight*) printf '{"schema":"goldgate.log.v1","ts":"2026-12-01T00:00:00Z","level":"error",'
    printf '"event":"preflight_failed","component":"worker","stack":null,"trace_id":null,"job_id":null,'
    printf '"workflow_version":null,"worker_image_tag":null}\n'; exit 1 ;;"""
    python = tmp_path / "python"
    python.write_text(STAND_IN.replace("{comfy}", COMFY_LINES).replace("{relay}", RELAY)
                      .replace("*.preflight*) exit 0 ;;", python_fails))
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "COMFY_DIR": str(tmp_path), "EVENTS": str(tmp_path / "events"),
           "APP_DIR": str(tmp_path), "WORKER_PKG": "images.worker", "PYTHONPATH": str(REPO)}
    done = subprocess.run(["bash", str(WORKER_DIR / "start.sh")], env=env, cwd=tmp_path, capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 1
    lines = validate_log_lines(done.stdout.decode()) + validate_log_lines(done.stderr.decode())
    [failed] = [line for line in lines if line["event"] == "worker.start.preflight_failed"]
    assert failed["level"] == "error" and failed["message"].startswith("FATAL: worker preflight failed")
    assert "worker.start.handler_launched" not in {line["event"] for line in lines}
