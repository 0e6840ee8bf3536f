"""Mutation audit (session 29): the references check fails closed whenever git cannot say what a checkout holds,
and names git's own refusal. A `git hash-object` that fails after the checkout was found is no pass, and it is that
failure which is named (not an earlier one, nor a warning git printed first); a worktree (whose `.git` is a file) is a
checkout as a clone is; and `goldgate build` refuses a `git rev-parse` that fails however it exits."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ci_policy import needs

from goldgate.cli import main
from goldgate.errors import GoldgateError
from goldgate.release.cases import uncommitted_references

GIT = shutil.which("git")
pytestmark = needs(GIT is not None, "git")


def _git(where: Path, *argv: str) -> None:
    subprocess.run([GIT, "-C", str(where), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "-c", "commit.gpgsign=false", *argv], check=True, capture_output=True)


def _bin(tmp_path: Path, failing: str, said: str, code: int = 128) -> str:
    """A PATH holding a `git` that fails the subcommand `failing` (printing `said` on stderr, exiting `code`) and runs
    the real git for every other."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "git"
    script.write_text(f"""#!/bin/sh
for a in "$@"; do
  if [ "$a" = "{failing}" ]; then printf '%b' '{said}' >&2; exit {code}; fi
done
exec {GIT} "$@"
""")
    script.chmod(0o755)
    return str(bin_dir)


def _refs(tmp_path: Path, commit: bool) -> Path:
    repo = tmp_path / "repo"
    refs = repo / "refs"
    refs.mkdir(parents=True)
    (refs / "a.png").write_bytes(b"reference a")
    _git(repo, "init", "-q")
    if commit:
        _git(repo, "add", "refs/a.png")
        _git(repo, "commit", "-qm", "refs")
    return refs


@pytest.mark.parametrize("commit", [True, False], ids=["committed", "no-commit-yet"])
def test_a_hash_object_git_refuses_is_no_pass_and_its_own_words_are_named(tmp_path: Path, commit: bool,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    refs = _refs(tmp_path, commit)
    assert uncommitted_references(refs, ["a.png"]) == ({} if commit else {"a.png": "untracked"})
    monkeypatch.setenv("PATH", _bin(tmp_path, "hash-object", "warning: review29 first line\\n"
                                                             "fatal: review29 cannot hash it\\n"))
    with pytest.raises(GoldgateError) as caught:
        uncommitted_references(refs, ["a.png"])
    said = str(caught.value)
    assert "cannot tell whether the reference images" in said, said
    assert "git said: fatal: review29 cannot hash it" in said, said
    assert "review29 first line" not in said and "HEAD" not in said, said   # not a warning, not ls-tree's refusal


def test_a_worktree_whose_git_is_a_file_is_a_checkout_when_git_is_not_installed(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    worktree = tmp_path / "worktree"
    refs = worktree / "refs"
    refs.mkdir(parents=True)
    (refs / "a.png").write_bytes(b"reference a")
    (worktree / ".git").write_text(f"gitdir: {tmp_path / 'main' / '.git' / 'worktrees' / 'w'}\n")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(GoldgateError, match="git is not installed") as caught:
        uncommitted_references(refs, ["a.png"])
    assert f"they are in a git checkout ({worktree.resolve()})" in str(caught.value)


def test_a_build_whose_rev_parse_fails_with_exit_1_is_refused_naming_git(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", _bin(tmp_path, "rev-parse", "error: review29 rev-parse refused\\n", code=1))
    assert main(["build", "--home", str(tmp_path / "home")]) == 1
    said = capsys.readouterr().err
    assert "cannot read the git commit" in said and "git said: error: review29 rev-parse refused" in said, said
    assert not (tmp_path / "home" / "images").exists()


def test_a_git_that_does_not_answer_is_named_with_its_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from goldgate.release import cases

    refs = _refs(tmp_path, commit=True)
    bin_dir = tmp_path / "slow-bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import time; time.sleep(30)'\n")
    (bin_dir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(cases, "GIT_STATUS_S", 0.5)
    with pytest.raises(GoldgateError) as caught:
        uncommitted_references(refs, ["a.png"])
    assert "`git rev-parse` did not answer within 0.5 s" in str(caught.value), str(caught.value)


def test_a_build_where_git_is_not_installed_says_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["build", "--home", str(tmp_path / "home")]) == 1
    said = capsys.readouterr().err
    assert "git is not installed (no `git` on PATH); install git (or put it on PATH)" in said, said
    assert "build from a git checkout" not in said, said


def test_the_gates_refusal_says_to_promote_again_once_git_reads_the_checkout(tmp_path: Path, paths,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from test_review29_rel_references_git_refused import (
        REFUSAL,
        _committed_suite,
        _path_with,
        _references_match,
    )

    _committed_suite(paths)
    passed, detail = _references_match(tmp_path, paths, monkeypatch, _path_with(tmp_path, REFUSAL))
    assert not passed
    assert detail.endswith("(git's own way out), then run `goldgate promote` again (the golden report stands)"), detail
