"""The local target's worker snapshot holds exactly what docker is sent for the worker image, and names it by the same
hash as the docker build's source label.

Before: the snapshot took every non-dot file of images/worker, while docker is sent only what .dockerignore (an
allowlist) leaves in. A README edit or a notes file beside the worker made a new local image (a new digest to test and
promote) that docker counted as the same source, and the two targets named one source by two different hashes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from goldgate.local.image_store import (
    ImageStoreError,
    build_local_image,
    resolve,
    sent_paths,
    snapshot_digest,
)
from goldgate.release.build import source_sha256

WORKER = Path(__file__).resolve().parents[2] / "images" / "worker"


def _worker_copy(tmp_path: Path) -> Path:
    source = tmp_path / "worker"
    shutil.copytree(WORKER, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return source


def test_a_readme_edit_or_a_notes_file_is_no_new_local_image_and_a_code_or_workflow_change_is(tmp_path: Path) -> None:
    source = _worker_copy(tmp_path)
    home = tmp_path / "home"
    first = build_local_image(source, home)
    (source / "README.md").write_text((source / "README.md").read_text() + "\nA note for the next person.\n")
    (source / "notes.txt").write_text("what I tried today\n")
    (source / "workflows" / "notes.md").write_text("ideas for a workflow\n")
    assert build_local_image(source, home) == first

    workflow = source / "workflows" / "sdxl-txt2img.json"
    body = json.loads(workflow.read_text())
    body["description"] = str(body.get("description", "")) + " (edited)"
    workflow.write_text(json.dumps(body, indent=2))
    second = build_local_image(source, home)
    assert second != first
    with (source / "handler.py").open("a", encoding="utf-8") as code:
        code.write("\n# an edit\n")
    assert build_local_image(source, home) not in (first, second)


def test_the_snapshot_holds_what_docker_is_sent_and_its_digest_is_the_docker_source_label(tmp_path: Path) -> None:
    source = _worker_copy(tmp_path)
    (source / "notes.txt").write_text("not part of the image\n")
    ref = build_local_image(source, tmp_path / "home")
    worker = resolve(ref, tmp_path / "home") / "worker"
    held = {p.relative_to(worker).as_posix() for p in worker.rglob("*") if p.is_file()}
    assert held == {name for name in sent_paths(source) if (source / name).is_file()}
    assert "README.md" not in held and "notes.txt" not in held and {"Dockerfile", "handler.py"} <= held
    # One source, one hash: the local reference is the label a docker build of the same tree carries.
    assert ref.removeprefix("local/worker@sha256:") == snapshot_digest(source) == source_sha256(source)


def test_a_worker_without_its_dockerignore_is_refused_saying_what_to_restore(tmp_path: Path) -> None:
    source = _worker_copy(tmp_path)
    (source / ".dockerignore").unlink()
    with pytest.raises(ImageStoreError, match=r"\.dockerignore is missing: it names the files that make the worker "
                                              r"image.*restore it.*nothing was built"):
        build_local_image(source, tmp_path / "home")
    assert not (tmp_path / "home" / "images").exists()


def _earlier_snapshot(tmp_path: Path, home: Path) -> tuple[str, Path]:
    """A snapshot as goldgate made it before it took only what docker is sent: every file but dotfiles and caches,
    named by sha256 over each file's path and content's sha256, in sorted order. Its models come from a build now."""
    source = _worker_copy(tmp_path)
    h = hashlib.sha256()
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            h.update(f"{rel.as_posix()}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    current = resolve(build_local_image(source, home), home)
    earlier = home / "images" / h.hexdigest()
    shutil.copytree(source, earlier / "worker", ignore=shutil.ignore_patterns(".*"))
    # Linked, not copied: the baked models are sparse files of their manifest sizes (GBs each once written out).
    shutil.copytree(current / "models", earlier / "models", copy_function=os.link)
    return f"local/worker@sha256:{h.hexdigest()}", earlier


def test_a_stack_pinned_to_a_snapshot_an_earlier_goldgate_made_runs_on_after_the_upgrade(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ref, earlier = _earlier_snapshot(tmp_path, home)
    assert resolve(ref, home) == earlier
    # Checked as it was made: an edit after its build is refused as with any snapshot.
    (earlier / "worker" / "README.md").write_text("edited after the build\n")
    with pytest.raises(ImageStoreError, match=r"was changed after the build"):
        resolve(ref, home)

