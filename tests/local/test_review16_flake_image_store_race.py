"""Review 16 (flake): a build that looks at the store's snapshot while another build replaces it.

A build first looks at an existing snapshot without the store's lock (a reused snapshot costs no wait). When the
snapshot was cut short and another build, holding the lock, removed it between this build's look at the worker code
and its read of the snapshot's models.yaml, the build failed with "ManifestError: .../models.yaml: cannot read (No
such file or directory)" instead of waiting its turn: about one run in 40 of the two-builds test
(test_review15_conc_image_store.py). The moment is made here, not waited for."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store


def test_a_build_whose_snapshot_another_build_removes_as_it_looks_waits_and_returns_it_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = shutil.copytree(WORKER_SOURCE, tmp_path / "worker")  # the repo's tree may change under a long run
    home = tmp_path / "home"
    ref = image_store.build_local_image(source, home)
    snapshot = image_store.resolve(ref, home)
    model = next(p for p in sorted((snapshot / "models").rglob("*")) if p.is_file() and p.stat().st_size > 0)
    size = model.stat().st_size
    with model.open("r+b") as f:
        f.truncate(0)  # cut short: the next build must bake it again

    real_digest = image_store.snapshot_digest
    removed = []

    def digest_then_the_other_build_removes_it(path: Path) -> str:
        digest = real_digest(path)
        if path == snapshot / "worker" and not removed:
            # The other build, holding the lock, found the snapshot cut short and removes it before it renames its
            # own into place: this build has read the worker code and not yet the snapshot's manifest.
            with image_store._build_lock(home / "images"):
                shutil.rmtree(snapshot)
            removed.append(path)
        return digest

    monkeypatch.setattr(image_store, "snapshot_digest", digest_then_the_other_build_removes_it)
    assert image_store.build_local_image(source, home) == ref
    assert removed, "the build never looked at the existing snapshot"
    monkeypatch.undo()
    assert image_store.resolve(ref, home) == snapshot
    assert model.stat().st_size == size, "the cut-short model was not baked again"
    assert not list((home / "images").glob(".build-*")), "the build left its staging dir behind"
