"""The local worker process on its own: how it fails at boot, and that it never outlives its parent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store

REPO = Path(__file__).resolve().parents[2]


def snapshot_with(tmp_path: Path, broken_module: str, line: str) -> Path:
    """A worker image whose `broken_module` (a file under worker/) ends with `line`."""
    source = tmp_path / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / broken_module).open("a", encoding="utf-8") as f:
        f.write(f"\n{line}\n")
    return image_store.resolve(image_store.build_local_image(source, tmp_path / "home"), tmp_path / "home")


def run_worker(snapshot: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COMFY_EMULATOR_STARTUP_S": "0", "STACK": "staging"}
    for key in [k for k in env if k.startswith(("RUNPOD_", "GOLDGATE_LIFELINE"))]:
        del env[key]
    return subprocess.run([sys.executable, "-m", "goldgate.local.worker_process", "--snapshot", str(snapshot),
                           "--", "--test_input", json.dumps({"input": {}})],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("module", "line"), [
    ("handler.py", "raise RuntimeError('cuda runtime not found')"),
    ("preflight.py", "import a_module_the_image_forgot_to_install"),
])
def test_a_worker_that_crashes_at_import_says_so_in_one_v1_line(tmp_path: Path, module: str, line: str) -> None:
    done = run_worker(snapshot_with(tmp_path, module, line))
    assert done.returncode == 4, done.stderr
    lines = [json.loads(raw) for raw in (done.stdout + done.stderr).splitlines() if raw.strip()]  # all v1 JSON
    failed = [entry for entry in lines if entry["event"] == "local_worker_import_failed"]
    assert len(failed) == 1, lines
    assert f"worker.{module.removesuffix('.py')}" in failed[0]["message"]
    assert line.split()[-1].strip("')") in failed[0]["message"]  # the cause, from the traceback's last line
    assert all(entry["schema"] == "goldgate.log.v1" for entry in lines)
