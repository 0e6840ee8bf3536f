"""The local content-addressed image store: snapshots of the worker package with sparse baked models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from worker_harness import FIXTURES, WORKER_DIR

from goldgate.local.image_store import (
    ImageStoreError,
    build_local_image,
    is_local_ref,
    resolve,
    snapshot_digest,
)
from images.worker.manifest import load_manifest
from images.worker.preflight import run_preflight


def test_building_twice_gives_the_same_reference_and_a_runnable_snapshot(tmp_path: Path):
    ref = build_local_image(WORKER_DIR, tmp_path)
    assert ref == build_local_image(WORKER_DIR, tmp_path)
    assert is_local_ref(ref)
    assert ref.startswith("local/worker@sha256:") and len(ref.split(":")[1]) == 64
    snapshot = resolve(ref, tmp_path)
    assert (snapshot / "worker" / "handler.py").is_file()
    assert not list(snapshot.rglob("__pycache__"))
    for model in load_manifest(WORKER_DIR / "models.yaml").models:
        baked = snapshot / "models" / model.directory / model.file
        assert baked.stat().st_size == (model.size or 1)
    report = run_preflight(snapshot / "worker" / "models.yaml", snapshot / "worker" / "workflows",
                           [snapshot / "models"])
    assert report.ok, report.problems
    # the snapshot, and the lock one build at a time holds (goldgate.local.image_store._build_lock)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [".lock", ref.split(":")[1]]


def test_any_change_to_the_tree_gives_a_new_digest(tmp_path: Path):
    source = tmp_path / "src"
    shutil.copytree(WORKER_DIR, source, ignore=shutil.ignore_patterns("__pycache__"))
    before = snapshot_digest(source)
    assert before == snapshot_digest(WORKER_DIR)
    (source / "workflows" / "sdxl-txt2img.json").write_text(
        (source / "workflows" / "sdxl-txt2img.json").read_text().replace('"goldgate"', '"goldgate2"'))
    assert snapshot_digest(source) != before
    assert build_local_image(source, tmp_path / "home") != build_local_image(WORKER_DIR, tmp_path / "home")


def test_a_tree_whose_workflows_name_unbaked_models_is_refused(tmp_path: Path):
    source = tmp_path / "src"
    shutil.copytree(WORKER_DIR, source, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(FIXTURES / "missing-model" / "workflows" / "sdxl-txt2img.json", source / "workflows")
    with pytest.raises(ImageStoreError, match="juggernautXL_v9.safetensors"):
        build_local_image(source, tmp_path / "home")
    with pytest.raises(ImageStoreError, match="not a worker package"):
        build_local_image(tmp_path, tmp_path / "home")


@pytest.mark.parametrize("ref", ["", "local/worker:latest", "local/worker@sha256:ABC", "registry.example.com/x@sha256:" + "a" * 64])
def test_malformed_references_are_refused_with_the_expected_form(ref: str, tmp_path: Path):
    assert not is_local_ref(ref)
    with pytest.raises(ImageStoreError, match="expected local/worker@sha256:<64 lowercase hex>"):
        resolve(ref, tmp_path)


def test_an_unknown_reference_says_to_build_it(tmp_path: Path):
    with pytest.raises(ImageStoreError, match="build it first"):
        resolve("local/worker@sha256:" + "0" * 64, tmp_path)
