"""Review 29 (sec2): `goldgate status prod` called a promotion "under way" whenever the release lock's file named a
live pid, and never asked whether that pid held the lock. A promotion killed with -9 (or by the out-of-memory killer,
or a reboot) leaves its pid in the file; pids are reused, another user's process counts as alive, and pid 1 always
is. Status then said the promotion was under way and left out the way out (promote again, or roll back). Now the
flock decides, as the kernel lists it; where that cannot be told, a live pid named there still does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from prod_status_support import A, B, promoted, promotion_under_way, unverified

from goldgate.local.state import StackDir
from goldgate.release import lock as lock_file
from goldgate.release.ledger import Ledger


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOLDGATE_LEDGER_KEY", raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """PROD pinned to B, whose promotion recorded its intent and no outcome (cut short, or under way)."""
    home = tmp_path / "home"
    ledger = Ledger(home)
    promoted(ledger, A)
    ledger.append("promotion", phase="intent", stack="prod", target="local", image=B, before=A, trigger="test")
    StackDir(home, "prod").pin(B, reason="deploy")
    return home


def _left_by_a_killed_promotion(home: Path, pid: int) -> None:
    """The release lock's file as a promotion killed with -9 leaves it: its holder named, the flock gone with it."""
    (home / "release.lock").write_text(json.dumps({"pid": pid, "purpose": "promote staging -> prod", "kind": "change",
                                                   "command": "goldgate promote", "since": "2026-12-01T00:00:00Z"}))


def _unverified(home: Path, capsys: pytest.CaptureFixture[str]) -> str:
    warning = unverified(home, capsys)
    assert warning, "no UNVERIFIED line"
    return warning


@pytest.mark.parametrize("alive", ["pid 1", "a process of ours"])
def test_a_live_pid_left_in_the_lock_file_is_no_promotion_under_way(home: Path, capsys: pytest.CaptureFixture[str],
                                                                     alive: str) -> None:
    other = None if alive == "pid 1" else subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _left_by_a_killed_promotion(home, 1 if other is None else other.pid)
        warning = _unverified(home, capsys)
    finally:
        if other is not None:
            other.kill()
            other.wait()
    assert "is under way" not in warning, warning
    assert (f"its promotion (ledger #5) did not finish, cut short before any smoke run judged it; `goldgate promote` tries it "
            f"again (and smokes it), or `goldgate rollback` puts back {A}") in warning, warning


def test_the_promotion_that_holds_the_lock_is_under_way(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with promotion_under_way(home) as pid:
        warning = _unverified(home, capsys)
    assert f"its promotion (ledger #5) is under way (promote staging -> prod, pid {pid}" in warning, warning
    warning = _unverified(home, capsys)     # killed with -9: its pid stays in the file
    assert json.loads((home / "release.lock").read_text())["pid"] == pid
    assert "did not finish, cut short before any smoke run judged it" in warning, warning


def test_where_the_lock_cannot_be_seen_a_live_pid_named_there_is_believed(
        home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock_file, "flock_holders", lambda path: None)   # no /proc/locks (not Linux)
    _left_by_a_killed_promotion(home, 1)
    assert "its promotion (ledger #5) is under way (promote staging -> prod, pid 1" in _unverified(home, capsys)
