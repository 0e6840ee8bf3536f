"""`goldgate doctor`'s advice names the folders it searched, and run bare on a machine that is no worker it says
where a local stack's models are checked instead of leaving a bare FAILED."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _doctor(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOLDGATE_HOME": str(cwd / "home")}
    return subprocess.run([sys.executable, "-m", "goldgate.cli", "doctor", *argv], check=False, capture_output=True,
                          text=True, cwd=cwd, env=env)


def test_the_rebuild_advice_names_the_roots_it_searched(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    run = _doctor("--model-root", str(empty), cwd=tmp_path)
    assert run.returncode == 1
    [advice] = [line for line in run.stdout.splitlines() if line.startswith("if this is a serverless image")]
    assert f"check {empty};" in advice and "/workspace/ComfyUI/models" not in advice


def test_doctor_run_bare_where_no_model_root_exists_points_at_the_local_stack(tmp_path: Path) -> None:
    if any(Path(root).is_dir() for root in ("/comfyui/models", "/workspace/ComfyUI/models")):
        pytest.skip("a worker machine: its own folders are what a bare doctor checks")
    run = _doctor(cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stdout.splitlines()[0].startswith("no model root on this machine")  # first, before the report
    assert "goldgate doctor --stack staging" in run.stdout
