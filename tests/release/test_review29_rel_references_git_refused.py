"""Review 29 (rel): the gate's "references are committed" check (report_references_match) passed when git itself would
not run in the checkout: a repository another user owns ("detected dubious ownership", git's safe.directory refusal),
or no git installed. `goldgate promote --check` then said "the report compared with the 2 reference images in the
checkout", as for an unpacked tarball, and the gate opened on files nothing showed were committed (CI's checkout holds
only what is). In a git checkout that git will not read, the condition fails, naming why and the way out; outside
git (no .git above the references, no git installed either) it passes as before. `goldgate build` there said
"build from a git checkout" (it was one): it now gives git's words and its way out."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from ci_policy import needs
from release_support import StandInApi, standin_api
from test_gate_and_lock import Stacks

from goldgate.cli import main
from goldgate.errors import GoldgateError
from goldgate.release.cases import uncommitted_references
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64
REFUSAL = """#!/bin/sh
echo "fatal: detected dubious ownership in repository at '$PWD'" >&2
echo "To add an exception for this directory, call:" >&2
exit 128
"""


def _git(where: Path, *argv: str) -> None:
    subprocess.run(["git", "-C", str(where), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "-c", "commit.gpgsign=false", *argv], check=True, capture_output=True)


def _committed_suite(paths: GoldenPaths) -> Path:
    checkout = paths.references_dir.parent
    _git(checkout, "init", "-q")
    _git(checkout, "add", ".")
    _git(checkout, "commit", "-qm", "suite")
    return checkout


def _path_with(tmp_path: Path, git_script: str | None) -> str:
    """A PATH whose only program is `git`, `git_script` (None: none at all, as where git is not installed)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if git_script is not None:
        (bin_dir / "git").write_text(git_script)
        (bin_dir / "git").chmod(0o755)
    return str(bin_dir)


def _references_match(tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch,
                      path: str) -> tuple[bool, str]:
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A)) as api:
        stacks = Stacks(api.url, {"staging": A})
        run = run_golden(stacks, "staging", ledger, paths=paths, poll_s=0.01)
        assert run.passed, run.report["failures"]
        with monkeypatch.context() as patched:
            patched.setenv("PATH", path)
            decision = check_gate(stacks, ledger, run.path, cases_dir=paths.cases_dir,
                                  references_dir=paths.references_dir)[0]
    [condition] = [c for c in decision.conditions if c.name == "report_references_match"]
    return condition.passed, condition.detail


def test_a_checkout_git_refuses_as_another_users_fails_the_gate_naming_safe_directory(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = _committed_suite(paths)
    passed, detail = _references_match(tmp_path, paths, monkeypatch, _path_with(tmp_path, REFUSAL))
    assert not passed, detail
    assert "reference images in the checkout" not in detail and "committed reference images" not in detail, detail
    assert "cannot tell whether the reference images" in detail, detail
    assert "detected dubious ownership" in detail, detail
    assert f"git config --global --add safe.directory {checkout.resolve()}" in detail, detail


def test_a_checkout_with_no_git_installed_fails_the_gate_naming_git(tmp_path: Path, paths: GoldenPaths,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _committed_suite(paths)
    passed, detail = _references_match(tmp_path, paths, monkeypatch, _path_with(tmp_path, None))
    assert not passed, detail
    assert "git is not installed" in detail and "install git" in detail, detail


def test_outside_any_checkout_with_no_git_the_references_still_pass_as_the_checkouts(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    passed, detail = _references_match(tmp_path, paths, monkeypatch, _path_with(tmp_path, None))
    assert passed, detail
    assert detail == f"the report compared with the 2 reference images in the checkout ({paths.references_dir})"


def test_git_dir_naming_something_git_cannot_read_is_no_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "a.png").write_bytes(b"reference a")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "no-such-repository"))
    with pytest.raises(GoldgateError, match="not a git repository") as caught:
        uncommitted_references(refs, ["a.png"])
    assert f"`git -C {refs} status` shows what git makes of it" in str(caught.value)


@needs(os.geteuid() == 0, "root (only root can give a repository to another user)")
def test_a_repository_owned_by_another_user_is_named_with_gits_own_way_out(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    refs = repo / "refs"
    refs.mkdir(parents=True)
    (refs / "a.png").write_bytes(b"reference a")
    _git(repo, "init", "-q")
    _git(repo, "add", "refs/a.png")
    _git(repo, "commit", "-qm", "refs")
    assert uncommitted_references(refs, ["a.png"]) == {}
    for place in [repo, *repo.rglob("*")]:
        os.lchown(place, 54321, 54321)
    with pytest.raises(GoldgateError, match="dubious ownership") as caught:
        uncommitted_references(refs, ["a.png"])
    assert f"safe.directory {repo.resolve()}" in str(caught.value)


def test_a_build_in_a_checkout_git_refuses_names_gits_way_out_not_build_from_a_checkout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # `goldgate build` in a checkout another user owns said "build from a git checkout": it was one.
    monkeypatch.setenv("PATH", _path_with(tmp_path, REFUSAL))
    assert main(["build", "--home", str(tmp_path / "home")]) == 1
    said = capsys.readouterr().err
    assert "detected dubious ownership" in said and "git config --global --add safe.directory" in said, said
    assert "build from a git checkout" not in said, said
    assert not (tmp_path / "home" / "images").exists()
