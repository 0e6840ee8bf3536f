"""Who holds a stack while `goldgate dr-restore` replaces its database, as the other commands see it: an `up` waits for
the restore and names it, whether or not a command ever made the stack's up lock file; a restore is refused, naming
the holder, while an `up` or a deploy holds the stack; a killed restore leaves nothing held."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from goldgate.local.state import StackDir


@pytest.mark.parametrize("up_lock_file", [False, True], ids=["never-up", "was-up"])
def test_an_up_waits_for_a_restore_and_names_it(tmp_path: Path, up_lock_file: bool) -> None:
    d = StackDir(tmp_path / "home", "staging")
    d.root.mkdir(parents=True)
    if up_lock_file:  # left by an earlier `up`, `down` or deploy
        d.up_lock_file.touch()
    said: list[str] = []
    with d.restoring() as holder:
        assert holder is None
        assert d.up_lock_file.exists()  # the lock an up, a down or a deploy holds the stack with
        with d.starting(0.3, said.append) as ours:
            assert ours is False  # it waited, and its wait ran out: the stack was never started under the restore
    assert said == [f"`goldgate dr-restore staging` (pid {os.getpid()})"]
    with d.starting(5) as ours:  # the restore is over: the next `up` goes ahead
        assert ours is True


def test_a_restore_is_refused_while_an_up_or_a_deploy_holds_the_stack(tmp_path: Path) -> None:
    d = StackDir(tmp_path / "home", "staging")
    with d.starting(5) as ours:
        assert ours
        with d.restoring() as holder:
            assert holder == f"`goldgate up staging` (pid {os.getpid()})"
    with d.deploying() as held:
        assert held is None
        with d.restoring() as holder:
            assert holder is not None and holder.startswith(f"a deploy to staging (pid {os.getpid()}")
    with d.restoring() as first:
        assert first is None
        with d.restoring() as second:
            assert second is not None and f"(pid {os.getpid()})" in second


def test_a_killed_restore_leaves_the_stack_free(tmp_path: Path) -> None:
    d = StackDir(tmp_path / "home", "staging")
    ctx = multiprocessing.get_context("fork")
    holding = ctx.Event()

    def restore() -> None:
        with d.restoring() as holder:
            assert holder is None
            holding.set()
            signal.pause()

    p = ctx.Process(target=restore)
    p.start()
    try:
        assert holding.wait(60)
        with d.restoring() as holder:
            assert holder == f"`goldgate dr-restore staging` (pid {p.pid})"
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.join(60)
    with d.starting(5) as ours:
        assert ours is True
