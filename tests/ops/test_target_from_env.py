"""GOLDGATE_TARGET=cloud makes every command with --target act on the cloud, checklist and metrics too: they
ignored it and printed the local stack's checklist, a NOT READY with 21 failures, during an incident."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("command", [["metrics", "staging"], ["checklist", "staging"]])
def test_goldgate_target_cloud_is_the_default_target_of_checklist_and_metrics(tmp_path: Path, command) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CLOUDFLARE_API_TOKEN", "RUNPOD_API_KEY")}
    env |= {"GOLDGATE_TARGET": "cloud", "GOLDGATE_HOME": str(tmp_path / "home")}
    run = subprocess.run([sys.executable, "-m", "goldgate.cli", *command], env=env, capture_output=True, text=True,
                         check=False, cwd=tmp_path)
    assert "Traceback" not in run.stderr
    # The cloud path asks for the cloud's credentials (or the stack's cloud settings); the local one never does.
    said = run.stdout + run.stderr
    assert "CLOUDFLARE_API_TOKEN" in said or "RUNPOD_API_KEY" in said or "stacks/Pulumi.staging.yaml" in said, said


def test_a_goldgate_target_typo_is_a_usage_error(tmp_path: Path) -> None:
    env = {**os.environ, "GOLDGATE_TARGET": "clodu", "GOLDGATE_HOME": str(tmp_path / "home")}
    run = subprocess.run([sys.executable, "-m", "goldgate.cli", "metrics", "staging"], env=env, capture_output=True,
                         text=True, check=False, cwd=tmp_path)
    assert run.returncode == 2 and "'clodu' is not a target" in run.stderr
