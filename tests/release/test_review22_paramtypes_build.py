"""`goldgate build` warns of a workflow parameter that contradicts the ComfyUI input it sets, on either
engine.

A `string` parameter on KSampler's `steps` (an INT input) was built, deployed and found only when ComfyUI
refused a job. The build names it (a warning, not a refusal: a real ComfyUI's node may be newer than the
emulator's spec), for the docker engine too, since the cloud image runs the same core nodes. Run as the CLI,
against a scratch home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_review19_lead_build_warns import REPO, build, worker_copy


def break_steps(context: Path) -> None:
    """The shipped sdxl-txt2img workflow, its `steps` parameter declared a string (KSampler's steps: INT)."""
    path = context / "workflows" / "sdxl-txt2img.json"
    raw = json.loads(path.read_text())
    steps = next(p for p in raw["parameters"] if p["name"] == "steps")
    steps.update(type="string", default="25", min=None, max=None)
    path.write_text(json.dumps(raw, indent=2))


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning:" in line]


def test_a_local_build_names_a_string_parameter_on_an_int_input(tmp_path):
    context = worker_copy(tmp_path)
    done = build(context, tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert warnings(done.stderr) == []           # the shipped workflows contradict no input

    break_steps(context)
    done = build(context, tmp_path / "home")
    assert done.returncode == 0, done.stderr     # a warning, not a refusal
    warned = warnings(done.stderr)
    assert len(warned) == 1, done.stderr
    for word in ("workflow sdxl-txt2img", "parameter steps", "node 3", "KSampler", "input steps",
                 "type string", "INT", "declare it integer"):
        assert word in warned[0], warned[0]


def test_a_docker_build_warns_too_before_it_needs_the_engine(tmp_path):
    context = worker_copy(tmp_path)
    break_steps(context)
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}   # no engine: refused, after it
    done = subprocess.run([sys.executable, "-m", "goldgate.cli", "build", "--engine", "docker", "--repo",
                           "127.0.0.1:5000/goldgate-worker", "--context", str(context), "--home",
                           str(tmp_path / "home"), "--workflow-version", "2026.11.0"],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env, check=False)
    assert done.returncode == 1 and "cannot reach a Docker engine" in done.stderr, done.stderr
    warned = warnings(done.stderr)
    assert len(warned) == 1 and "parameter steps" in warned[0] and "input steps" in warned[0], done.stderr
