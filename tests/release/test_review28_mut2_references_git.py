"""The gate's "committed" word on the reference images (goldgate.release.cases.uncommitted_references): a reference
that .gitignore keeps out of git is not committed either (CI's checkout does not hold it), and is named so."""

from __future__ import annotations

import subprocess
from pathlib import Path

from goldgate.release.cases import uncommitted_references


def _git(where: Path, *argv: str) -> None:
    subprocess.run(["git", "-C", str(where), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "-c", "commit.gpgsign=false", *argv], check=True, capture_output=True)


def test_a_reference_gitignore_keeps_out_is_not_committed(tmp_path: Path) -> None:
    refs = tmp_path / "references"
    refs.mkdir()
    (refs / "kept.png").write_bytes(b"png 1")
    (tmp_path / ".gitignore").write_text("references/ignored.png\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".gitignore", "references/kept.png")
    _git(tmp_path, "commit", "-qm", "suite")
    (refs / "ignored.png").write_bytes(b"png 2")   # made by a golden run, never committed: git does not show it
    assert uncommitted_references(refs, ["kept.png", "ignored.png"]) == {
        "ignored.png": "untracked"}
    assert uncommitted_references(refs, ["kept.png"]) == {}
