"""Review 30 mutation audit (mut30): `status prod` on a rollback to the release PROD is pinned to, cut short after
that release's run there failed. Its sentence names the run that failed as it was (a full golden run is not called a
smoke run), the rollback by its intent's ledger number once the next command closed it as interrupted (the number
`goldgate history` shows for the rollback), and a golden run of PROD holding the release lock is no rollback under
way: the rollback still did not finish, and `goldgate rollback` finishes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prod_status_support import A, B, promoted, status
from test_review30_rel_rollback_cut_short import FINISH, home  # noqa: F401 -- the fixture

from goldgate.local.state import StackDir
from goldgate.release.ledger import Ledger

# `goldgate golden prod` holding the release lock, in a process of its own (status reads no holder in its own process)
HOLD = ("import sys; from goldgate.release.lock import ReleaseLock\n"
        "with ReleaseLock(sys.argv[1], 'golden prod', kind='golden', again='goldgate golden prod'):\n"
        "    print('held', flush=True); sys.stdin.read()")


def _cut_short(home: Path, suite: str) -> tuple[Ledger, int, int, int]:  # noqa: F811 -- the fixture's value
    ledger = Ledger(home)
    promoted(ledger, A)
    promoted(ledger, B, before=A)
    verified = ledger.entries()[-1].seq
    StackDir(home, "prod").pin(B, reason="promotion")
    failed = ledger.append("golden", stack="prod", target="local", image=B, suite=suite, passed=False, role="prod",
                           failures=["flux-fox: completed: status failed"], trigger="test").seq
    intent = ledger.append("rollback", phase="intent", stack="prod", target="local", image=B, before=B,
                           reason="manual", trigger="test").seq
    return ledger, verified, failed, intent


def test_a_full_golden_run_that_failed_is_named_so(home: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    _, verified, failed, intent = _cut_short(home, "full")
    _, data = status(home, capsys)
    assert data["unverified"] == (
        f"prod is pinned to {B}, whose full golden run there failed (ledger #{failed}) after a promotion verified it "
        f"there (ledger #{verified}): the rollback to it (ledger #{intent}) did not finish, cut short before any "
        f"smoke run judged it; {FINISH} (`goldgate history`)")


def test_a_rollback_closed_as_interrupted_is_named_by_its_intent(home: Path,  # noqa: F811
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    ledger, _, _, intent = _cut_short(home, "smoke")
    closed = ledger.append("rollback", phase="outcome", intent_seq=intent, stack="prod", target="local", image=B,
                           before=B, after=B, pinned=B, prod_image=None, outcome="interrupted", reason="manual",
                           trigger="goldgate reconcile").seq
    _, data = status(home, capsys)
    said = data["unverified"]
    assert f"the rollback to it (ledger #{intent}) did not finish" in said and f"#{closed})" not in said, said


def test_a_golden_run_holding_the_lock_is_no_rollback_under_way(home: Path,  # noqa: F811
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    _, _, _, intent = _cut_short(home, "smoke")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    golden = subprocess.Popen([sys.executable, "-c", HOLD, str(home)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert golden.stdout is not None and golden.stdout.readline().strip() == "held"
        _, data = status(home, capsys)
    finally:
        golden.communicate("", timeout=30)
    said = data["unverified"]
    assert f"the rollback to it (ledger #{intent}) did not finish" in said and "under way" not in said, said
