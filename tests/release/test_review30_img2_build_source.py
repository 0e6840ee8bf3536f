"""What a worker build is made from: only the files the Dockerfile copies, and none that git does not track.

Before: images/worker/.dockerignore left out Python caches alone. An editor's swap or backup file (`.handler.py.swp`,
`handler.py~`, `.#handler.py`) or a tool's cache (.mypy_cache, .pytest_cache, .ruff_cache) beside the worker changed
the image's source label (and the local image store's digest), so the same commit counted as other source and the tag
check refused it; and `COPY *.py` baked a stray, untracked `scratch.py` into the goldgate_worker package under a tag
naming a commit that does not have it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ci_policy import needs
from test_build_reuse import REPO, _engine, _identity

from goldgate.local.image_store import ImageStoreError, build_local_image, resolve, snapshot_digest
from goldgate.release.build import SOURCE_LABEL, BuildFailed, build_docker, source_sha256

WORKER = Path(__file__).resolve().parents[2] / "images" / "worker"


def _worker_copy(where: Path) -> Path:
    ctx = where / "images" / "worker"
    shutil.copytree(WORKER, ctx, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return ctx


def _leave_editor_and_tool_files(ctx: Path) -> None:
    (ctx / ".handler.py.swp").write_bytes(b"b0VIM 9.0 swap")          # vim, while handler.py is open
    (ctx / "handler.py~").write_text("# the backup an editor keeps\n")
    os.symlink("dev@laptop.4242:1700000000", ctx / ".#handler.py")    # emacs's lock: `*.py` matches it
    (ctx / "workflows" / ".sdxl-txt2img.json.swp").write_bytes(b"b0VIM 9.0 swap")
    (ctx / "workflows" / "sdxl-txt2img.json~").write_text("{}\n")
    for cache in (".mypy_cache", ".pytest_cache", ".ruff_cache"):
        (ctx / cache).mkdir()
        (ctx / cache / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n")


def test_editor_files_and_tool_caches_beside_the_worker_change_neither_build_source(tmp_path: Path) -> None:
    ctx = _worker_copy(tmp_path)
    source, local = source_sha256(ctx), snapshot_digest(ctx)
    _leave_editor_and_tool_files(ctx)
    assert source_sha256(ctx) == source, "the same commit must not count as other source than its pushed image"
    assert snapshot_digest(ctx) == local
    assert build_local_image(ctx, tmp_path / "home").endswith(local)
    # docker is sent only what the Dockerfile copies: notes and a README edit are no other source either.
    (ctx / "notes.txt").write_text("what I tried today\n")
    (ctx / "README.md").write_text((ctx / "README.md").read_text() + "\nA note.\n")
    assert source_sha256(ctx) == source
    (ctx / "handler.py").write_text((ctx / "handler.py").read_text() + "# an edit\n")
    assert source_sha256(ctx) != source and snapshot_digest(ctx) != local   # what is copied still counts


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false",
                    *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout holding the worker, committed: its images/worker."""
    repo = tmp_path / "checkout"
    ctx = _worker_copy(repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "worker")
    return ctx


@needs(shutil.which("git") is not None, "git")
def test_an_untracked_file_is_refused_by_both_builds_and_a_tracked_edit_is_not(checkout: Path, tmp_path: Path) -> None:
    (checkout / "scratch.py").write_text("print('trying something')\n")
    built: list[str] = []
    with pytest.raises(BuildFailed) as refused:
        build_docker(_engine(built), checkout, REPO, _identity(checkout))
    said = str(refused.value)
    assert f"{checkout / 'scratch.py'}: not tracked by git" in said and "`git add`" in said, said
    assert said.endswith("nothing was built") and built == []
    with pytest.raises(ImageStoreError, match=r"scratch\.py: not tracked by git.*nothing was built"):
        build_local_image(checkout, tmp_path / "home")
    assert not (tmp_path / "home" / "images").exists() or not any((tmp_path / "home" / "images").iterdir())

    # A developer iterating: handler.py edited and not committed, the new module `git add`ed and not committed; the
    # editor's files and caches beside them are untracked too, and never sent, so they refuse nothing.
    (checkout / "handler.py").write_text((checkout / "handler.py").read_text() + "# trying something\n")
    _git(checkout, "add", "scratch.py")
    _leave_editor_and_tool_files(checkout)
    ref = build_local_image(checkout, tmp_path / "home")
    assert (resolve(ref, tmp_path / "home") / "worker" / "scratch.py").is_file()
    result = build_docker(_engine(built, labels={SOURCE_LABEL: source_sha256(checkout)}), checkout, REPO,
                          _identity(checkout))
    assert result.reused and built == []


@needs(shutil.which("git") is not None, "git")
def test_a_worker_unpacked_inside_another_checkout_that_tracks_none_of_it_builds(tmp_path: Path) -> None:
    # goldgate from a tarball or `git archive`, unpacked in a home folder or monorepo that is itself under git: that
    # repository tracks none of the worker's files, so none of them is a stray. Refusing all 20 of them ("`git add`
    # what the worker needs") blocked every build, `goldgate up` and `goldgate demo` there.
    outer = tmp_path / "home-under-git"
    ctx = _worker_copy(outer)
    _git(outer, "init", "-q")
    ref = build_local_image(ctx, tmp_path / "home")
    assert ref.endswith(snapshot_digest(ctx))
    built: list[str] = []
    result = build_docker(_engine(built, labels={SOURCE_LABEL: source_sha256(ctx)}), ctx, REPO, _identity(ctx))
    assert result.reused and built == []   # judged on its source, not refused as untracked
