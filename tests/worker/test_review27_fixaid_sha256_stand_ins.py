"""`goldgate doctor --stack staging --sha256` on the local target: every model of a local snapshot is a zero-filled
stand-in (goldgate/local/image_store.py bakes each as a sparse file of its manifest size), whose sha256 can never
match models.yaml. Before, each was reported SHA256_MISMATCH "a different file with the same name" and doctor
FAILED (after hashing every sparse GB). Now a stand-in in a local snapshot is said to be one and not hashed; a real
wrong file there, and a zero-filled file anywhere else, still fail."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import yaml
from worker_harness import WORKER_DIR

from goldgate.local.image_store import build_local_image, resolve
from images.worker.preflight import run_preflight

# A safetensors header length of 0 leaves the content check nothing to judge: only the sha256 tells these apart.
REAL = bytes(8) + b"a real model's bytes, not zeros" * 100
WRONG = bytes(8) + b"x" * (len(REAL) - 8)
CHECKPOINT = "checkpoints/sd_xl_base_1.0.safetensors"


def _snapshot(tmp_path: Path) -> Path:
    """A local image snapshot, built by the local image store, of a worker whose models.yaml pins one small
    checkpoint by size and sha256 (of REAL)."""
    source = tmp_path / "src"
    shutil.copytree(WORKER_DIR, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for workflow in (source / "workflows").iterdir():
        if workflow.name != "sdxl-txt2img.json":
            workflow.unlink()
    (source / "models.yaml").write_text(yaml.safe_dump({"models": [{
        "file": "sd_xl_base_1.0.safetensors", "kind": "checkpoint", "directory": "checkpoints", "size": len(REAL),
        "sha256": hashlib.sha256(REAL).hexdigest(), "source_url": "https://registry.example/model"}]}))
    return resolve(build_local_image(source, tmp_path / "home"), tmp_path / "home")


def _doctor(snapshot: Path):
    return run_preflight(snapshot / "worker" / "models.yaml", snapshot / "worker" / "workflows",
                         [snapshot / "models"], verify_sha256=True)


def test_a_local_snapshots_stand_ins_are_said_to_be_so_not_a_sha256_mismatch(tmp_path: Path):
    report = _doctor(_snapshot(tmp_path))
    assert report.ok, report.problems
    [check] = report.models
    assert check.status == "ok" and "zero-filled stand-in" in check.message
    assert "SHA256_MISMATCH" not in report.render_text()
    assert any("stand-in" in w and "not checked" in w for w in report.warnings)


def test_a_real_wrong_file_in_a_local_snapshot_is_still_caught(tmp_path: Path):
    snapshot = _snapshot(tmp_path)
    (snapshot / "models" / CHECKPOINT).write_bytes(WRONG)  # same size, other bytes
    report = _doctor(snapshot)
    assert [m.status for m in report.models] == ["sha256_mismatch"] and not report.ok
    (snapshot / "models" / CHECKPOINT).write_bytes(REAL)
    assert _doctor(snapshot).ok


def test_a_zero_filled_file_outside_a_local_snapshot_is_no_model(tmp_path: Path):
    snapshot = _snapshot(tmp_path)
    models = tmp_path / "comfyui" / "models"  # as in a real image
    shutil.copytree(snapshot / "models", models)
    report = run_preflight(snapshot / "worker" / "models.yaml", snapshot / "worker" / "workflows", [models],
                           verify_sha256=True)
    [check] = report.models
    assert check.status == "sha256_mismatch" and "zero bytes" in check.message, check.message
