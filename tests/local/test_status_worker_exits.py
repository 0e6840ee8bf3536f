"""`goldgate status` of a stack whose workers keep dying at start (no models: preflight_failed, exit 3) showed the
stack up with no worker section at all, while jobs sat queued. It now says none run and names the unexpected exits
of the last 15 minutes, read from the RunPod emulator's own log lines."""

from __future__ import annotations

import time
from pathlib import Path

from goldgate.commands.local import _render_status
from goldgate.local.platform import recent_worker_exits
from goldgate.local.runpod.eventlog import EventLog


def _emulator_log(path: Path, events: list[tuple[str, dict]]) -> Path:
    with path.open("a", encoding="utf-8") as stream:
        log = EventLog(stream, "staging")
        for level, fields in events:
            getattr(log, level)("worker.exited", **fields)
    return path


def test_unexpected_exits_are_read_from_the_emulators_log_and_stopped_ones_are_not(tmp_path: Path) -> None:
    log = _emulator_log(tmp_path / "runpod-emulator.jsonl", [
        ("info", {"worker": "w-stopped", "returncode": 0, "expected": True}),
        ("warning", {"worker": "w-1", "returncode": 3, "expected": False}),
        ("warning", {"worker": "w-2", "returncode": 3, "expected": False}),
    ])
    exits = recent_worker_exits(log)
    assert [(e["worker"], e["returncode"]) for e in exits] == [("w-1", 3), ("w-2", 3)]
    assert recent_worker_exits(log, now_s=time.time() + 3600) == []  # older than the window: nothing to say


def test_status_of_a_stack_whose_workers_die_says_so(tmp_path: Path) -> None:
    log = _emulator_log(tmp_path / "runpod-emulator.jsonl",
                        [("warning", {"worker": f"w-{i}", "returncode": 3, "expected": False}) for i in range(7)])
    status = {"stack": "staging", "running": True, "logs_dir": str(tmp_path), "workers": [],
              "worker_exits": recent_worker_exits(log)}
    text = _render_status(status)
    assert "none running" in text
    assert "5+ unexpected in the last 15 min (newest: w-6, code 3" in text
    assert f"{tmp_path}/worker-w-6.log" in text and "preflight_failed" in text


def test_a_fifo_in_place_of_the_emulators_log_is_no_hang_and_no_exits(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "runpod-emulator.jsonl")
    assert recent_worker_exits(tmp_path / "runpod-emulator.jsonl") == []


def test_status_and_golden_from_a_directory_without_state_say_where_they_looked(tmp_path: Path) -> None:
    """Run from another directory than the checkout that started the stacks, every stack read as down and `golden`
    told the user to start a second pair; both now name the state dir they found missing."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "GOLDGATE_HOME"}
    status = subprocess.run([sys.executable, "-m", "goldgate.cli", "status"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=False)
    assert status.returncode == 0 and f"no state dir at {tmp_path / '.goldgate'}" in status.stderr
    golden = subprocess.run([sys.executable, "-m", "goldgate.cli", "golden", "staging"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=False)
    assert golden.returncode == 1 and "Traceback" not in golden.stderr
    assert f"no state dir at {tmp_path / '.goldgate'}" in golden.stderr, golden.stderr
    assert not (tmp_path / ".goldgate").exists() or "stacks" not in os.listdir(tmp_path / ".goldgate")
