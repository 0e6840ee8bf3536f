"""`resolve` removes Python's caches from a snapshot before it checks it (a planted .pyc would run instead of the source
the reference names), and a cache it cannot remove refuses the snapshot. The refusal named the worker folder and said
to "give this user write access there, or rebuild the image": a rebuild finds the snapshot intact (its digest names no
cache) and leaves the cache where it is, so the next resolve refused again. It now names the cache folder, its owner
and the command that removes it. And a cache whose files went but whose folder could not (its parent read-only) held
nothing Python could load, yet refused the snapshot: it is now taken.

A cache this user may not remove is made by failing the removal (the tests run as root in CI, which no permission
stops), the way the file system fails it."""

from __future__ import annotations

import errno
import importlib.util
import os
import py_compile
import shutil
from pathlib import Path

import pytest
from test_review31_fixsec31_snapshot_integrity import _import_png, _source

from goldgate.local.image_store import ImageStoreError, build_local_image, resolve


def _planted_cache(snapshot: Path, tmp_path: Path) -> Path:
    """An unchecked .pyc for worker/png.py that Python loads whatever png.py holds; returns its folder."""
    evil = tmp_path / "png.py"
    evil.write_text("PLANTED = 'planted code ran'\n", encoding="utf-8")
    cached = Path(importlib.util.cache_from_source(str(snapshot / "worker" / "png.py")))
    cached.parent.mkdir(exist_ok=True)
    py_compile.compile(str(evil), cfile=str(cached), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    return cached.parent


def _denied(*args, **kwargs):
    raise PermissionError(errno.EACCES, "Permission denied", str(args[0]))


def test_a_cache_this_user_cannot_remove_is_refused_naming_it_and_how_to_remove_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, home = _source(tmp_path), tmp_path / "home"
    ref = build_local_image(source, home)
    snapshot = resolve(ref, home)
    cache = _planted_cache(snapshot, tmp_path)

    monkeypatch.setattr(shutil, "rmtree", _denied)   # written by a worker run as another user
    with pytest.raises(ImageStoreError) as refused:
        resolve(ref, home)
    said = str(refused.value)
    assert f"{cache} holds Python bytecode this user cannot remove (Permission denied)" in said, said
    assert f"`rm -r {cache}`, as " in said and "then run this again" in said, said
    assert "rebuild" not in said, said   # a rebuild finds the snapshot intact and leaves the cache as it is
    monkeypatch.undo()

    shutil.rmtree(cache)                             # what the refusal says to do
    assert resolve(ref, home) == snapshot
    assert _import_png(snapshot) == "source"


def test_a_cache_folder_left_empty_because_its_parent_is_read_only_is_no_refusal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, home = _source(tmp_path), tmp_path / "home"
    ref = build_local_image(source, home)
    snapshot = resolve(ref, home)
    cache = _planted_cache(snapshot, tmp_path)

    rmdir = os.rmdir

    def parent_read_only(path, *args, **kwargs):     # the .pyc files go; the folder's own entry cannot
        if os.fspath(path).endswith("__pycache__"):
            _denied(path)
        return rmdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", parent_read_only)
    assert resolve(ref, home) == snapshot
    monkeypatch.undo()
    assert cache.is_dir() and not any(cache.iterdir())
    assert _import_png(snapshot) == "source"
