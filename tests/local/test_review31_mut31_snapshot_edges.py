"""The local worker snapshot's edges, found by a mutation audit of goldgate.local.image_store: a symlink among the files
docker would be sent is refused by name (not silently left out of the image), and a named pipe where a source file
was is left out instead of hanging or failing the build."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from ci_policy import needs
from test_review31_img31_snapshot_is_dockers import _worker_copy

from goldgate.local.image_store import ImageStoreError, build_local_image, resolve


def test_a_symlinked_source_file_is_refused_by_name_and_nothing_is_built(tmp_path: Path) -> None:
    source = _worker_copy(tmp_path)
    (source / "helpers.py").symlink_to(source / "handler.py")   # docker is sent *.py: this one would be a link
    with pytest.raises(ImageStoreError, match=r"helpers\.py is a symlink; a worker snapshot holds regular files only"):
        build_local_image(source, tmp_path / "home")
    assert not any((tmp_path / "home" / "images").glob("[0-9a-f]*"))


@needs(hasattr(os, "mkfifo"), "named pipes (os.mkfifo)")
def test_a_named_pipe_among_the_sources_is_left_out_of_the_snapshot(tmp_path: Path) -> None:
    source = _worker_copy(tmp_path)
    os.mkfifo(source / "pipe.py")
    home = tmp_path / "home"
    worker = resolve(build_local_image(source, home), home) / "worker"
    assert (worker / "handler.py").is_file() and not (worker / "pipe.py").exists()


def test_a_snapshot_edited_after_its_build_or_missing_its_models_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ref = build_local_image(_worker_copy(tmp_path), home)
    snapshot = resolve(ref, home)
    # What was tested is not what would run: a stack pinned to the reference must not start the edited code.
    with (snapshot / "worker" / "handler.py").open("a", encoding="utf-8") as code:
        code.write("\n# edited in the store\n")
    with pytest.raises(ImageStoreError, match=r"was changed after the build .*rebuild it from the worker source"):
        resolve(ref, home)

    ref = build_local_image(_worker_copy(tmp_path / "again"), tmp_path / "home2")
    snapshot = resolve(ref, tmp_path / "home2")
    shutil.rmtree(snapshot / "models")
    with pytest.raises(ImageStoreError, match=r"no local worker image .* build it first"):
        resolve(ref, tmp_path / "home2")
