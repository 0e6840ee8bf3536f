"""Mutation audit (session 29): what `goldgate status` and the ledger's refusals tell an operator about PROD. A smoke
run that failed is not called one that "passed there before"; a promotion cut short after its smoke run passed says
so; a tampered ledger's refusal names the way out."""

from __future__ import annotations

from pathlib import Path

import pytest
from prod_status_support import A, B, promoted, promotion_under_way, status, unverified

from goldgate.cli import main
from goldgate.local.state import StackDir
from goldgate.release.ledger import Ledger


def _promotion_of_b_begun(home: Path, before: str = A) -> int:
    """PROD promoted to A, then a promotion of B (from `before`) that pinned it and wrote no outcome: the seq of its
    intent."""
    ledger = Ledger(home)
    promoted(ledger, A)
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=B, before=before,
                           trigger="test")
    StackDir(home, "prod").pin(B, reason="deploy")
    return intent.seq


def test_a_smoke_run_that_only_failed_is_not_said_to_have_passed_before(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    promoted(ledger, A)
    failed = ledger.append("golden", stack="prod", target="local", image=B, suite="smoke", passed=False, role="prod",
                           failures=["case x: red"], trigger="test")
    StackDir(home, "prod").pin(B, reason="deploy")
    said = status(home, capsys)[1]["smoke_failed"]
    assert said.startswith(f"prod is pinned to {B}, whose smoke run failed there (ledger #{failed.seq}"), said
    assert "passed there before" not in said and said.endswith("`goldgate rollback` takes prod off it "
                                                               "(docs/RUNBOOK.md, Rollback)"), said


def test_a_promotion_cut_short_after_its_smoke_run_passed_says_so(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    promoted(ledger, A)
    ledger.append("golden", stack="staging", target="local", image=B, suite="full", passed=True, role="staging",
                  failures=[], trigger="test")
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=B, before=A,
                           trigger="test", retry_rejected=True)
    smoke = ledger.append("golden", stack="prod", target="local", image=B, suite="smoke", passed=True, role="prod",
                          failures=[], trigger="test")
    StackDir(home, "prod").pin(B, reason="deploy")   # then killed before its outcome was written
    said = unverified(home, capsys)
    assert said == (
        f"prod is pinned to {B}, which no promotion verified there: its promotion (ledger #{intent.seq}) did not "
        f"finish, though its smoke run passed (ledger #{smoke.seq}); `goldgate promote --retry-rejected` tries it "
        f"again (and smokes it), or `goldgate rollback` puts back {A} (not a verdict on it)"), said


def test_a_tampered_ledger_is_refused_with_the_way_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    promoted(Ledger(home), A)
    path = home / "ledger.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"trigger":"test"', '"trigger":"edit"')
    path.write_text("\n".join(lines) + "\n")
    assert main(["history", "--home", str(home)]) == 1
    err = capsys.readouterr().err
    assert "hash mismatch" in err, err
    assert "never edit the ledger by hand: restore it from its backup (in CI, the release-ledger branch)" in err, err
    assert "`mv ledger.jsonl ledger.jsonl.broken`" in err, err


@pytest.mark.parametrize("which", ["prod", "all"])
def test_up_says_unverified_as_status_does(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch, which: str) -> None:
    """`goldgate up prod` answers with the stack's status: an UNVERIFIED PROD is said there too (the host start
    itself is stood in for: the stack stays down, pinned)."""
    from goldgate.commands import local

    monkeypatch.setattr(local, "ensure_up", lambda platform, stack: platform.status(stack))
    home = tmp_path / "home"
    promoted(Ledger(home), A)
    StackDir(home, "prod").pin(B, reason="by hand")
    assert main(["up", which, "--home", str(home)]) == 0
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if line.strip().startswith("UNVERIFIED")]
    assert f"prod is pinned to {B}, which no promotion or rollback verified there" in line, out


X = "local/worker@sha256:" + "c" * 64


def test_a_promotion_cut_short_off_an_unverified_release_offers_the_last_verified_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The release PROD was on before the promotion (pinned by hand, never verified) is no release to roll back to:
    `rollback` would go to the newest verified one, and that one is named."""
    home = tmp_path / "home"
    intent = _promotion_of_b_begun(home, before=X)
    said = unverified(home, capsys)
    assert said.endswith(f"its promotion (ledger #{intent}) did not finish, cut short before any smoke run judged it; "
                         f"`goldgate promote` tries it again (and smokes it), or `goldgate rollback` puts back the "
                         f"last verified release ({A}, ledger #4; `goldgate history`) (not a verdict on it)"), said
    assert f"puts back {X}" not in said, said


def test_a_promotion_whose_outcome_says_interrupted_names_its_intent(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    intent = _promotion_of_b_begun(home)
    Ledger(home).append("promotion", phase="outcome", intent_seq=intent, stack="prod", target="local", image=B,
                        before=A, after=B, pinned=B, prod_image=None, outcome="interrupted", trigger="test")
    said = unverified(home, capsys)
    assert said == (
        f"prod is pinned to {B}, which no promotion verified there: its promotion (ledger #{intent}) did not "
        f"finish, cut short before any smoke run judged it; `goldgate promote` tries it again (and smokes it), or `goldgate "
        f"rollback` puts back {A} (not a verdict on it)"), said


def test_a_golden_run_holding_the_release_lock_is_no_promotion_under_way(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    _promotion_of_b_begun(home)
    with promotion_under_way(home, "golden staging", kind="golden", command="goldgate golden staging"):
        said = unverified(home, capsys)
    assert "did not finish, cut short before any smoke run judged it" in said and "under way" not in said, said


def test_a_rollback_holding_the_release_lock_is_named_as_closing_the_promotion(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    intent = _promotion_of_b_begun(home)
    with promotion_under_way(home, "rollback prod", command="goldgate rollback") as pid:
        said = unverified(home, capsys)
    assert said.startswith(f"prod is pinned to {B}, which no smoke run judged there: its promotion (ledger "
                           f"#{intent}) did not finish, and a rollback is under way (rollback prod, pid "
                           f"{pid}"), said
    assert said.endswith("`goldgate status prod` again once it ends"), said
