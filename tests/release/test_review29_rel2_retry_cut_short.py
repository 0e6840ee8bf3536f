"""Review 29 (rel2): after a release failed its smoke run on PROD (and PROD was rolled back), a `goldgate promote
--retry-rejected` of it was cut short after it moved PROD's pin, before its smoke run. The line the interrupt prints
(`left_behind`) and the one the next promote or rollback prints once it closes the change (`prod_state_warning`)
named the older run's failure and `goldgate rollback`, and said nothing of the promotion to retry: the newest change
speaks now, as `goldgate status prod` says it (test_review29_rel2_prod_status.py)."""

from __future__ import annotations

from pathlib import Path

from promotion_support import released
from test_promotion_evidence import A, B

from goldgate.release.ledger import Ledger
from goldgate.release.rollback import left_behind, prod_state_warning
from goldgate.release.verification import GoldenPaths


def _failed_and_rolled_back(ledger: Ledger) -> int:
    """A promotion of B whose smoke run failed on PROD, and the automatic rollback to A: the failed run's seq."""
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=B, before=A,
                           trigger="test")
    failed = ledger.append("golden", stack="prod", target="local", image=B, suite="smoke", passed=False, role="prod",
                           failures=["smoke-case: rendered black"], trigger="test").seq
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", target="local", image=B,
                  before=A, after=B, pinned=B, prod_image=None, outcome="smoke_failed", trigger="test")
    back = ledger.append("rollback", phase="intent", stack="prod", target="local", image=A, before=B,
                         reason=f"automatic: promotion of {B} smoke failed", trigger="test")
    ledger.append("golden", stack="prod", target="local", image=A, suite="smoke", passed=True, role="prod",
                  failures=[], trigger="test")
    ledger.append("rollback", phase="outcome", intent_seq=back.seq, stack="prod", target="local", image=A, before=B,
                  after=A, pinned=A, prod_image=A, outcome="rolled_back", trigger="test")
    return failed


def test_a_retry_cut_short_is_what_the_interrupt_and_the_next_command_say(tmp_path: Path,
                                                                         paths: GoldenPaths) -> None:
    with released(tmp_path, paths, A) as r:
        failed = _failed_and_rolled_back(r.ledger)
        intent = r.ledger.append("promotion", phase="intent", stack="prod", target="local", image=B, before=A,
                                 retry_rejected=True, trigger="test")
        r.target.pins["prod"] = B      # its deploy moved the pin; then SIGTERM
        interrupt = left_behind(r.target, r.ledger, "prod")
        r.ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", target="local", image=B,
                        before=A, after=B, pinned=B, prod_image=None, outcome="interrupted",
                        trigger="goldgate reconcile")   # what the next command's reconcile records
        warning = prod_state_warning(r.target, r.ledger, "prod")
    assert interrupt == (
        f"the promotion of {B} on prod (ledger #{intent.seq}) did not finish and no smoke run judged {B} on prod; "
        f"prod is pinned to {B}; its smoke run there before that promotion failed (ledger #{failed}); `goldgate "
        f"promote --retry-rejected` tries it again (and smokes it), or `goldgate rollback` puts back {A} (not a "
        "verdict on it)")
    assert warning == (
        f"prod is pinned to {B}, which no smoke run judged there: its promotion (ledger #{intent.seq}) was "
        f"interrupted; its smoke run there before that promotion failed (ledger #{failed}); `goldgate promote "
        f"--retry-rejected` smokes it, or `goldgate rollback` puts back {A} (not a verdict on it)")


def test_a_failed_smoke_run_of_the_pin_with_no_promotion_of_it_since_is_still_said(tmp_path: Path,
                                                                                 paths: GoldenPaths) -> None:
    with released(tmp_path, paths, A) as r:
        failed = _failed_and_rolled_back(r.ledger)
        r.target.pins["prod"] = B      # the automatic rollback's pin moved back to B afterwards
        warning = prod_state_warning(r.target, r.ledger, "prod")
    assert warning == (f"prod is pinned to {B}, whose smoke run failed there (ledger #{failed}): `goldgate rollback` "
                       "takes prod off it")
