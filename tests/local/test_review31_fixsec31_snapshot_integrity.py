"""A local worker image is what its reference names, and only that, when a worker runs it.

The build hashed the worker's files, then copied them in a second pass, following links: a file saved between the two
passes gave a reference whose snapshot held other bytes (the next deploy refused it as "changed after the build"),
and one swapped for a link was copied from wherever the link pointed (a key file beside the checkout) into the
image. Now the build hashes what it copied, opens nothing through a link, and builds nothing when the source moved.

`resolve` checked the digest, which names only the files docker is sent: a `__pycache__/*.pyc`, a package folder
`logs/` beside `logs.py` or a module beside `worker/` (the snapshot's folder is first on a worker's import path) were
not looked at, and Python loads each instead of the checked source. Now Python's caches are removed before the
check (a worker writes them again from the checked source) and anything else no build puts there is refused."""

from __future__ import annotations

import importlib.util
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from goldgate.local import image_store
from goldgate.local.image_store import ImageStoreError, build_local_image, resolve

WORKER = Path(__file__).resolve().parents[2] / "images" / "worker"


def _source(tmp_path: Path) -> Path:
    source = tmp_path / "worker"
    shutil.copytree(WORKER, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return source


def _when_copy_starts(monkeypatch: pytest.MonkeyPatch, change) -> None:
    """Runs `change` once the build has taken its digest and starts the copy (it makes its staging folder)."""
    mkdtemp = image_store.tempfile.mkdtemp

    def staged(*args, **kwargs):
        change()
        return mkdtemp(*args, **kwargs)

    monkeypatch.setattr(image_store.tempfile, "mkdtemp", staged)


def _snapshots(home: Path) -> list[Path]:
    return [path for path in (home / "images").iterdir() if not path.name.startswith(".")]


def test_a_file_saved_while_the_build_copies_builds_nothing_and_says_build_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, home = _source(tmp_path), tmp_path / "home"

    def save() -> None:
        with (source / "handler.py").open("a", encoding="utf-8") as code:
            code.write("\n# saved during the build\n")

    _when_copy_starts(monkeypatch, save)
    with pytest.raises(ImageStoreError, match="changed during the build.*build again"):
        build_local_image(source, home)
    assert _snapshots(home) == []
    monkeypatch.undo()
    resolve(build_local_image(source, home), home)   # built again, it names what it holds


def test_a_file_swapped_for_a_link_is_not_copied_from_the_links_target(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    source, home = _source(tmp_path), tmp_path / "home"
    private = tmp_path / "deploy-key.py"
    private.write_text("KEY = 'not-for-any-image-3c9d'\n", encoding="utf-8")

    is_dir = Path.is_dir

    def swap_once_listed(path: Path) -> bool:   # the build asks whether png.py is a folder just before copying it
        if path == source / "png.py" and not path.is_symlink():
            path.unlink()
            path.symlink_to(private)
        return is_dir(path)

    monkeypatch.setattr(Path, "is_dir", swap_once_listed)
    with pytest.raises(ImageStoreError, match="png.py"):
        build_local_image(source, home)
    for path in (home / "images").rglob("*"):
        assert not path.is_file() or b"not-for-any-image" not in path.read_bytes(), path


def _import_png(snapshot: Path) -> str:
    """What a worker importing the snapshot's `worker.png` gets (a worker_process puts the snapshot first on its path)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import worker.png as png; "
            "print(getattr(png, 'PLANTED', 'source'))")
    return subprocess.run([sys.executable, "-c", code, str(snapshot)], capture_output=True, text=True, timeout=60,
                          check=True).stdout.strip()


def test_a_planted_pyc_never_runs_and_a_snapshot_a_worker_ran_still_resolves(tmp_path: Path) -> None:
    source, home = _source(tmp_path), tmp_path / "home"
    ref = build_local_image(source, home)
    snapshot = resolve(ref, home)
    assert _import_png(snapshot) == "source"   # a worker ran it: Python wrote worker/__pycache__
    assert list((snapshot / "worker" / "__pycache__").glob("png.*.pyc"))
    assert resolve(ref, home) == snapshot      # Python's own cache is no tampering

    evil = tmp_path / "png.py"
    evil.write_text("PLANTED = 'planted code ran'\n", encoding="utf-8")
    cached = Path(importlib.util.cache_from_source(str(snapshot / "worker" / "png.py")))
    cached.parent.mkdir(exist_ok=True)
    # An unchecked .pyc: Python loads it whatever png.py holds.
    py_compile.compile(str(evil), cfile=str(cached), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    assert resolve(ref, home) == snapshot
    assert _import_png(snapshot) == "source"


@pytest.mark.parametrize("planted", ["worker/png/__init__.py", "yaml.py", "worker/png.cpython-311.pyc"])
def test_a_module_planted_beside_the_checked_source_is_refused_until_rebuilt(tmp_path: Path, planted: str) -> None:
    source, home = _source(tmp_path), tmp_path / "home"
    ref = build_local_image(source, home)
    snapshot = resolve(ref, home)
    (snapshot / planted).parent.mkdir(parents=True, exist_ok=True)
    (snapshot / planted).write_text("PLANTED = True\n", encoding="utf-8")
    with pytest.raises(ImageStoreError, match=f"holds {planted}, which no build puts there.*rebuild"):
        resolve(ref, home)
    assert build_local_image(source, home) == ref   # the rebuild the message asks for replaces it
    assert not (resolve(ref, home) / planted).exists()
