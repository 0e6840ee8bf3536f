"""Two builds into one local image store at once (two terminals, two CI runs of one build job on one runner, a
`goldgate build` while `goldgate up staging` builds the working tree's image). When the snapshot they both build was
cut short (a baked model truncated: the runbook's "rebuild it"), each found it wanting and removed it: one removed
the snapshot the other had just put in place and returned, or failed with "No such file or directory" on the files
the other removed under it, or left the snapshot half removed. The builds into a store now take turns."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store

ROUNDS = 12  # without the lock about three rounds in four lost: twelve in a row never passed


def _build(source: Path, home: Path, barrier: Any, results: Any) -> None:
    barrier.wait(60)
    try:
        results.put(("ok", image_store.build_local_image(source, home)))
    except BaseException as exc:  # noqa: BLE001 -- handed to the test's process
        results.put(("failed", f"{type(exc).__name__}: {exc}"))


def _cut_a_model_short(snapshot: Path) -> Path:
    model = next(p for p in sorted((snapshot / "models").rglob("*")) if p.is_file() and p.stat().st_size > 0)
    with model.open("r+b") as f:
        f.truncate(0)
    return model


def test_two_builds_of_a_cut_short_snapshot_at_once_both_succeed_and_leave_it_whole(tmp_path: Path) -> None:
    # A copy: an edit of the repo's worker (its digest changes) during the rounds is not what this test is about.
    source = shutil.copytree(WORKER_SOURCE, tmp_path / "worker")
    home = tmp_path / "home"
    ref = image_store.build_local_image(source, home)
    snapshot = image_store.resolve(ref, home)
    ctx = multiprocessing.get_context("fork")
    for round_ in range(ROUNDS):
        model = _cut_a_model_short(snapshot)
        size = image_store._baked_models(source / "models.yaml")[model.relative_to(snapshot / "models").as_posix()]
        barrier, results = ctx.Barrier(2), ctx.Queue()
        builds = [ctx.Process(target=_build, args=(source, home, barrier, results)) for _ in range(2)]
        for p in builds:
            p.start()
        outcomes = [results.get(timeout=120) for _ in builds]
        for p in builds:
            p.join(60)
        assert outcomes == [("ok", ref), ("ok", ref)], f"round {round_ + 1}: {outcomes}"
        assert image_store.resolve(ref, home) == snapshot
        assert model.stat().st_size == size, f"round {round_ + 1}: the cut-short model was not baked again"
        assert not list((home / "images").glob(".build-*")), "a build left its staging dir behind"


def test_a_build_waits_for_the_one_in_progress_and_names_it_when_it_gives_up(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock is the kernel's (flock): a second build waits for the first and then takes its snapshot; one held
    past the wait is named by pid, in one line, and nothing is removed."""
    source = shutil.copytree(WORKER_SOURCE, tmp_path / "worker")
    home = tmp_path / "home"
    ref = image_store.build_local_image(source, home)
    snapshot = image_store.resolve(ref, home)
    _cut_a_model_short(snapshot)
    images = home / "images"
    ctx = multiprocessing.get_context("fork")
    holding, release = ctx.Event(), ctx.Event()

    def hold() -> None:
        with image_store._build_lock(images):
            holding.set()
            release.wait(120)

    holder = ctx.Process(target=hold)
    holder.start()
    try:
        assert holding.wait(60)
        monkeypatch.setattr(image_store, "BUILD_LOCK_WAIT_S", 0.3)
        with pytest.raises(image_store.ImageStoreError) as refused:
            image_store.build_local_image(source, home)
        said = str(refused.value)
        assert f"another build into {images} (pid {holder.pid})" in said and "\n" not in said, said
        assert (snapshot / "worker" / "handler.py").is_file()  # the refused build removed nothing
    finally:
        release.set()
        holder.join(60)
    # A holder that is gone (killed) leaves no lock behind: the next build goes ahead (within the short wait).
    release.clear()
    holding.clear()
    killed = ctx.Process(target=hold)
    killed.start()
    assert holding.wait(60)
    os.kill(killed.pid, signal.SIGKILL)
    killed.join(60)
    assert image_store.build_local_image(source, home) == ref
    assert image_store.resolve(ref, home) == snapshot
