"""A local worker build hashes the worker's files (the digest it names the image by), then copies them into the
snapshot in a second pass, and puts the copy in place without checking it against the digest. A file saved between
the two passes (an editor's save, a `git checkout` in another terminal while `goldgate up` builds) is copied as it is
then: `goldgate build` prints a reference whose snapshot holds other bytes, and the deploy that follows is refused as
"changed after the build", though nobody touched the snapshot. The build must hash what it copied (or verify the
staged copy's digest before the rename) and, when the source moved under it, say so and build nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from goldgate.local import image_store
from goldgate.local.image_store import ImageStoreError, build_local_image, resolve

WORKER = Path(__file__).resolve().parents[2] / "images" / "worker"


def test_a_file_saved_while_the_snapshot_is_copied_is_no_image_with_a_wrong_name(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "worker"
    shutil.copytree(WORKER, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    home = tmp_path / "home"
    copy = image_store._copy_file   # copies one file's bytes (shutil.copyfile before the fix)
    saved = []

    def copy_while_saved(src, dst, *args, **kwargs):   # the editor saves handler.py as the copy starts
        if not saved:
            saved.append(True)
            with (source / "handler.py").open("a", encoding="utf-8") as code:
                code.write("\n# saved during the build\n")
        return copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(image_store, "_copy_file", copy_while_saved)
    try:
        ref = build_local_image(source, home)
    except ImageStoreError as exc:   # the fix's answer: the source moved, nothing was built
        assert "build" in str(exc)
        return
    monkeypatch.undo()
    # Else the image it names must be the one it built: resolvable, and holding what its name says.
    resolve(ref, home)
