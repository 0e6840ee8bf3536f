"""A stack's own lock files (`up.lock`, `host.lock`) are written and truncated by every `up`, `down`, deploy and
restore, so a symbolic link planted at one would have goldgate empty whatever file of its user the link names.
Like the release locks and the ledger, they refuse a link (and anything else that is no regular file) by name;
a home that is itself a link keeps working."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from goldgate.errors import StateError
from goldgate.local.state import StackDir

REPO = Path(__file__).resolve().parents[2]
VICTIM_TEXT = "a file the link names: goldgate must leave it as it is\n"


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    return victim


def _linked(tmp_path: Path, lock: str) -> tuple[StackDir, Path]:
    d = StackDir(tmp_path / "home", "staging")
    d.root.mkdir(parents=True)
    victim = _victim(tmp_path)
    os.symlink(victim, getattr(d, lock))
    return d, victim


@pytest.mark.parametrize("hold", ["starting", "deploying", "restoring"])
def test_a_link_at_the_up_lock_is_refused_by_name_and_its_target_left_alone(tmp_path: Path, hold: str) -> None:
    d, victim = _linked(tmp_path, "up_lock_file")
    hold_it = (lambda: d.starting(1.0)) if hold == "starting" else getattr(d, hold)
    with pytest.raises(StateError) as raised, hold_it():
        pytest.fail("the lock was taken through a link")
    said = str(raised.value)
    assert f"up.lock is a symbolic link (to {victim})" in said and "link the whole home instead" in said, said
    assert victim.read_text() == VICTIM_TEXT


def test_down_stops_a_stack_without_following_a_link_at_its_up_lock(tmp_path: Path) -> None:
    d, victim = _linked(tmp_path, "up_lock_file")
    with d.stopping():  # never a reason for `down` to fail
        pass
    d.note_starting_host(os.getpid())  # advice written into the lock: not through a link either
    assert victim.read_text() == VICTIM_TEXT


def test_a_link_at_the_host_lock_is_refused_and_its_target_left_alone(tmp_path: Path) -> None:
    d, victim = _linked(tmp_path, "lock_file")
    with pytest.raises(StateError, match=r"host.lock is a symbolic link .*the stack's host lock"):
        d.take_host_lock()
    assert victim.read_text() == VICTIM_TEXT


def test_up_with_a_link_at_the_up_lock_says_so_in_one_line_and_starts_nothing(tmp_path: Path) -> None:
    d, victim = _linked(tmp_path, "up_lock_file")
    done = subprocess.run([sys.executable, "-m", "goldgate.cli", "up", "staging", "--home", str(d.home)],
                          cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={**os.environ, "GOLDGATE_HOME": ""}, check=False)
    assert done.returncode != 0, done
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("goldgate: error:")]
    assert len(errors) == 1 and "up.lock is a symbolic link" in errors[0], done.stderr
    assert not d.state_file.exists()  # no host was started
    assert victim.read_text() == VICTIM_TEXT


def test_locks_in_a_home_that_is_itself_a_link_keep_working(tmp_path: Path) -> None:
    real = tmp_path / "disk" / "home"
    real.mkdir(parents=True)
    (tmp_path / "home").symlink_to(real)
    d = StackDir(tmp_path / "home", "staging")
    with d.deploying() as holder:
        assert holder is None
    fd = d.take_host_lock()
    assert fd is not None
    os.close(fd)
    assert (real / "stacks" / "staging" / "up.lock").is_file()
