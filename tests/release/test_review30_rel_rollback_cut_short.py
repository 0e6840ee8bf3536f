"""Review 30 (rel): PROD's smoke run of B, a release verified there, failed (PROD's own fault); once it was fixed the
engineer ran what `goldgate status prod` offered, `goldgate rollback --to B`, and cancelled it (SIGTERM, Ctrl-C)
before its smoke run ended. `status prod` still showed the older SMOKE FAILED line as if it were the newest thing,
with no word of the rollback left open; the interrupt's own line said "`goldgate rollback` puts back B" (PROD is on
B), and the next command's line "`goldgate rollback` takes prod off it" while `goldgate rollback` goes on to finish
the rollback to B. Reproduced on the local target: `golden prod --smoke` on a PROD with faults.failed_rate 1, PROD
restarted without it, `rollback --to B` killed (SIGTERM) once its smoke run began. The rollback to it now speaks,
as a `promote --retry-rejected` cut short does (test_review29_rel2_retry_cut_short.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prod_status_support import A, B, promoted, status
from promotion_support import released
from test_promotion_evidence import A as TA
from test_promotion_evidence import B as TB

from goldgate.local.state import StackDir
from goldgate.release import ledger as ledger_file
from goldgate.release.ledger import Ledger
from goldgate.release.rollback import left_behind, prod_state_warning
from goldgate.release.verification import GoldenPaths

FINISH = ("`goldgate rollback` finishes it (and smokes it), or `goldgate rollback --to <release>` pins another verified "
          "release")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(ledger_file.KEY_ENV, raising=False)
    return tmp_path / "home"


def _smoke_failed(ledger: Ledger, image: str) -> int:
    return ledger.append("golden", stack="prod", target="local", image=image, suite="smoke", passed=False,
                         role="prod", failures=["flux-fox: completed: status failed"], trigger="test").seq


def test_status_says_a_rollback_to_the_release_cut_short_after_its_failed_smoke_run(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = Ledger(home)
    promoted(ledger, A)
    promoted(ledger, B, before=A)
    verified = ledger.entries()[-1].seq
    StackDir(home, "prod").pin(B, reason="promotion")
    failed = _smoke_failed(ledger, B)                        # `goldgate golden prod --smoke` on a faulty PROD
    intent = ledger.append("rollback", phase="intent", stack="prod", target="local", image=B, before=B,
                           reason="manual", trigger="test").seq   # `goldgate rollback --to B`, then SIGTERM
    text, data = status(home, capsys)
    assert data["smoke_failed"] is None and "SMOKE FAILED" not in text, text
    assert data["unverified"] == (
        f"prod is pinned to {B}, whose smoke run there failed (ledger #{failed}) after a promotion verified it there "
        f"(ledger #{verified}): the rollback to it (ledger #{intent}) did not finish, cut short before any smoke run "
        f"judged it; {FINISH} (`goldgate history`)")
    again = _smoke_failed(ledger, B)        # had its own smoke run failed before it was killed, that run is newest
    text, data = status(home, capsys)
    assert data["smoke_failed"] and f"whose smoke run failed there (ledger #{again}," in data["smoke_failed"], text
    assert data["unverified"] is None, data


def test_the_interrupt_and_the_next_command_say_the_rollback_to_it_is_what_rollback_finishes(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with released(tmp_path, paths, TA, TB) as r:
        failed = _smoke_failed(r.ledger, TB)
        intent = r.ledger.append("rollback", phase="intent", stack="prod", target="local", image=TB, before=TB,
                                 reason="manual", trigger="test")
        interrupt = left_behind(r.target, r.ledger, "prod")
        r.ledger.append("rollback", phase="outcome", intent_seq=intent.seq, stack="prod", target="local", image=TB,
                        before=TB, after=TB, pinned=TB, prod_image=None, outcome="interrupted", reason="manual",
                        trigger="goldgate reconcile")   # what the next command's reconcile records
        warning = prod_state_warning(r.target, r.ledger, "prod")
    assert interrupt == (
        f"the rollback of {TB} on prod (ledger #{intent.seq}) did not finish and no smoke run judged {TB} on prod since "
        f"it began; prod is pinned to {TB}; its smoke run there before that rollback failed (ledger #{failed}); "
        f"{FINISH} (see `goldgate history`)")
    assert warning == (
        f"prod is pinned to {TB}, which no smoke run judged there since its rollback to it (ledger #{intent.seq}) was "
        f"interrupted; its smoke run there before that rollback failed (ledger #{failed}); {FINISH} (see `goldgate "
        "history`)")
