"""This session's security review of its own change (session 28): the references check never runs what a
repository's git config names, a stale stop note left in up.lock is not taken for `goldgate down`, and the SMOKE
FAILED line keeps a failure text on one line."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.local.state import StackDir
from goldgate.release.cases import uncommitted_references
from goldgate.release.ledger import Ledger


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"})


def test_the_references_check_runs_no_command_the_repository_names(tmp_path: Path) -> None:
    repo, refs, ran = tmp_path / "repo", tmp_path / "repo" / "refs", tmp_path / "ran"
    refs.mkdir(parents=True)
    (refs / "a.png").write_bytes(b"reference a")
    (refs / "b.png").write_bytes(b"reference b")
    _git(repo, "init", "-q")
    _git(repo, "add", "refs/a.png", "refs/b.png")
    _git(repo, "commit", "-qm", "refs")
    # A repository met through --references-dir (an unpacked artifact, say) naming commands git would run.
    _git(repo, "config", "core.fsmonitor", f"echo fsmonitor >> {ran}; false")
    (repo / ".gitattributes").write_text("*.png filter=x\n")
    _git(repo, "config", "filter.x.clean", f"sh -c 'echo filter >> {ran}; cat'")
    (refs / "b.png").write_bytes(b"reference b, changed")
    (refs / "c.png").write_bytes(b"never added")

    assert uncommitted_references(refs, ["a.png", "b.png", "c.png"]) == {"b.png": "modified", "c.png": "untracked"}
    assert not ran.exists(), ran.read_text()


def test_a_stop_note_whose_holder_no_longer_holds_up_lock_is_not_goldgate_asking(tmp_path: Path) -> None:
    d = StackDir(tmp_path / "home", "staging")
    d.ensure()
    d.up_lock_file.write_text(f"down {os.getpid()}\n")   # a killed `down`'s note, its pid since reused (alive)
    assert d.stop_asked_by() is None
    with open(d.up_lock_file) as held:                    # a `down` that holds the lock while it waits
        fcntl.flock(held, fcntl.LOCK_EX)
        assert d.stop_asked_by() == "down"
    d.up_lock_file.write_text("down \u00b2\n")             # a digit to str.isdigit, none to int()
    assert d.stop_asked_by() is None


def test_the_smoke_failed_line_keeps_a_failure_text_on_one_line(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    home, image = tmp_path / "home", "local/worker@sha256:" + "c" * 64
    StackDir(home, "prod").pin(image, reason="test")
    Ledger(home).append("golden", stack="prod", target="local", image=image, suite="smoke", passed=False,
                        role="prod", failures=["red\r\nINJECTED LINE"], trigger="test")
    assert main(["status", "prod", "--home", str(home), "--json"]) == 0
    warning = json.loads(capsys.readouterr().out)["smoke_failed"]
    assert "red INJECTED LINE" in warning and "\n" not in warning and "\r" not in warning, warning
