"""`goldgate build` says when models.yaml lists a model the Dockerfile does not bake.

The local snapshot bakes what models.yaml lists, the cloud image what the Dockerfile fetches: a model added to the
first alone passed every local golden run and shipped a cloud image without it, and only `goldgate checklist`
said so, later. The build warns (a Dockerfile may bake a model in a shape the check does not read: not a refusal).
Run as the CLI, against a scratch home."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
__all__ = ["REPO", "build", "worker_copy"]  # shared with the other local build warnings' tests
NEW = {"file": "sd_xl_turbo_1.0_fp16.safetensors", "kind": "checkpoint", "directory": "checkpoints", "size": 4096,
       "sha256": "e" * 64, "source_url": "https://models.example/sd_xl_turbo_1.0_fp16.safetensors"}


def worker_copy(tmp_path: Path) -> Path:
    """A copy of images/worker to build from and edit."""
    context = tmp_path / "worker"
    shutil.copytree(REPO / "images" / "worker", context, ignore=shutil.ignore_patterns("__pycache__"))
    return context


def build(context: Path, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "goldgate.cli", "build", "--engine", "local", "--context",
                           str(context), "--home", str(home), "--workflow-version", "2026.11.0"],
                          capture_output=True, text=True, timeout=120, cwd=REPO, check=False)


def test_a_model_the_dockerfile_does_not_bake_is_named_at_the_build(tmp_path):
    context = worker_copy(tmp_path)
    done = build(context, tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "warning:" not in done.stderr           # the worker as shipped bakes every model it lists

    manifest = yaml.safe_load((context / "models.yaml").read_text())
    manifest["models"].append(NEW)
    (context / "models.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    done = build(context, tmp_path / "home")
    assert done.returncode == 0, done.stderr       # a warning, not a refusal
    warned = [line for line in done.stderr.splitlines() if "warning:" in line]
    assert len(warned) == 1 and f"does not bake checkpoints/{NEW['file']}" in warned[0], done.stderr
    assert "Add a model to the worker image" in warned[0]

    with (context / "Dockerfile").open("a") as fh:
        fh.write(f"RUN python -B /opt/goldgate/fetch_model.py {NEW['source_url']} {NEW['sha256']} {NEW['size']} "
                 f"/comfyui/models/checkpoints/{NEW['file']}\n")
    done = build(context, tmp_path / "home")
    assert done.returncode == 0 and "warning:" not in done.stderr, done.stderr


def test_a_dockerfile_that_is_a_fifo_does_not_hang_the_build(tmp_path):
    # The local snapshot skips what is not a regular file; the warning's read of a FIFO blocked for ever.
    import os

    context = worker_copy(tmp_path)
    (context / "Dockerfile").unlink()
    os.mkfifo(context / "Dockerfile")
    done = build(context, tmp_path / "home")    # the timeout (120 s) is the failure
    assert done.returncode == 0, done.stderr
    assert "warning:" not in done.stderr
