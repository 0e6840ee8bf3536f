"""Review 28 (goldenfix): `goldgate promote --check` said "report_references_match ok the report compared with the 7
committed reference images" while one of them was untracked in git (`?? scripts/golden-tests/references/local/x.png`):
this checkout's gate opened on a file CI's checkout does not hold. In a git checkout a reference git shows untracked
or modified is not committed, and the condition fails naming it; committed ones pass as before (CI's checkout, a fresh
clone); outside git (an unpacked tarball) they are called the checkout's, never "committed"."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from PIL import Image
from release_support import StandInApi, standin_api
from test_gate_and_lock import Stacks

from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64


def _git(where: Path, *argv: str) -> None:
    subprocess.run(["git", "-C", str(where), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "-c", "commit.gpgsign=false", *argv], check=True, capture_output=True)


def _references_match(tmp_path: Path, paths: GoldenPaths) -> tuple[bool, str]:
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A)) as api:
        stacks = Stacks(api.url, {"staging": A})
        run = run_golden(stacks, "staging", ledger, paths=paths, poll_s=0.01)
        assert run.passed, run.report["failures"]
        decision = check_gate(stacks, ledger, run.path, cases_dir=paths.cases_dir,
                              references_dir=paths.references_dir)[0]
    [condition] = [c for c in decision.conditions if c.name == "report_references_match"]
    return condition.passed, condition.detail


def test_an_untracked_reference_is_not_called_committed_and_fails_the_gate(tmp_path: Path,
                                                                           paths: GoldenPaths) -> None:
    checkout = paths.references_dir.parent
    _git(checkout, "init", "-q")
    _git(checkout, "add", "cases", "references/batch.png")
    _git(checkout, "commit", "-qm", "suite")          # square.png was made and never committed
    passed, detail = _references_match(tmp_path, paths)
    assert not passed, detail
    assert "committed reference images" not in detail
    assert "git does not hold 1 of the 2 as committed: square.png (untracked)" in detail, detail
    assert "commit" in detail and "then run `goldgate golden staging" in detail, detail


def test_a_reference_modified_in_the_checkout_fails_and_committed_ones_pass(tmp_path: Path,
                                                                           paths: GoldenPaths) -> None:
    checkout = paths.references_dir.parent
    _git(checkout, "init", "-q")
    _git(checkout, "add", ".")
    _git(checkout, "commit", "-qm", "suite")
    assert _references_match(tmp_path / "clean", paths) == (
        True, "the report compared with the 2 committed reference images")
    square = paths.references_dir / "square.png"
    with Image.open(square) as img:        # the same picture in other bytes: the case still passes against it
        out = io.BytesIO()
        img.save(out, "PNG", compress_level=0)
    square.write_bytes(out.getvalue())
    passed, detail = _references_match(tmp_path / "edited", paths)
    assert not passed and "square.png (modified)" in detail, detail


def test_outside_git_the_references_are_the_checkouts_not_committed_ones(tmp_path: Path, paths: GoldenPaths) -> None:
    passed, detail = _references_match(tmp_path, paths)
    assert passed, detail
    assert detail == f"the report compared with the 2 reference images in the checkout ({paths.references_dir})"
