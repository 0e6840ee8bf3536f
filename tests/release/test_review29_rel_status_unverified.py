"""Review 29 (rel): `goldgate status prod` said nothing when PROD was pinned to a release nothing judged: pin.json
edited by hand, a ledger that lost its entries, or a promotion cut short before its smoke run. It printed the image
as for any verified release. Now an UNVERIFIED line (`unverified` in --json) says so, with the ways out that exist: a
rollback to the last verified release when the ledger has one, the gate (golden on STAGING, then promote --image),
or, for a promotion cut short, the promotion again; for a promotion under way, that its smoke run decides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prod_status_support import A, B, promoted, promotion_under_way, status

from goldgate.local.state import StackDir
from goldgate.release.ledger import Ledger


def test_prod_pinned_by_hand_to_a_release_nothing_judged_is_unverified_with_the_ways_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    promoted(Ledger(home), A)
    StackDir(home, "prod").pin(B, reason="by hand")
    text, data = status(home, capsys)
    assert "UNVERIFIED" in text, text
    warning = data["unverified"]
    assert warning.startswith(f"prod is pinned to {B}, which no promotion or rollback verified there"), warning
    assert "pin.json edited by hand, or the ledger lost its entries" in warning, warning
    assert f"`goldgate rollback` puts back the last verified release ({A}, ledger #4" in warning, warning
    assert (f"`goldgate deploy staging --image {B}`, `goldgate golden staging`, then `goldgate promote --image {B}`"
            in warning), warning


def test_prod_on_a_verified_release_is_not_unverified_and_staging_never_is(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    promoted(Ledger(home), A)
    StackDir(home, "prod").pin(A, reason="deploy")
    StackDir(home, "staging").pin(B, reason="deploy")
    text, data = status(home, capsys)
    assert data["unverified"] is None and "UNVERIFIED" not in text, text
    text, data = status(home, capsys, "staging")
    assert data["unverified"] is None and "UNVERIFIED" not in text, text


def test_a_ledger_that_lost_its_entries_leaves_no_rollback_to_offer(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    StackDir(home, "prod").pin(A, reason="deploy")     # promoted once; the ledger then removed (or a new state dir)
    _, data = status(home, capsys)
    warning = data["unverified"]
    assert warning and "the ledger holds no verified release of prod to roll back to" in warning, warning
    assert f"`goldgate promote --image {A}`" in warning, warning


def test_a_promotion_cut_short_before_its_smoke_run_says_to_run_it_again(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    promoted(ledger, A)
    ledger.append("golden", stack="staging", target="local", image=B, suite="full", passed=True, role="staging",
                  failures=[], trigger="test")
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=B, before=A,
                           trigger="test")
    StackDir(home, "prod").pin(B, reason="deploy")      # then Ctrl-C: no smoke run, no outcome
    _, data = status(home, capsys)
    assert data["unverified"] == (
        f"prod is pinned to {B}, which no promotion verified there: its promotion (ledger #{intent.seq}) did not "
        f"finish, cut short before any smoke run judged it; `goldgate promote` tries it again (and smokes it), or `goldgate "
        f"rollback` puts back {A} (not a verdict on it)")


def test_a_promotion_under_way_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    promoted(ledger, A)
    ledger.append("promotion", phase="intent", stack="prod", target="local", image=B, before=A, trigger="test")
    StackDir(home, "prod").pin(B, reason="deploy")
    # A promotion's process: it holds the release lock (the flock, not only the file naming it) until killed.
    with promotion_under_way(home) as pid:
        _, data = status(home, capsys)
    warning = data["unverified"]
    assert warning and "which no smoke run has judged there yet: its promotion (ledger #5) is under way" in warning
    assert f"pid {pid}" in warning and "its smoke run decides" in warning, warning
    _, data = status(home, capsys)        # its holder gone (killed): cut short, as above
    assert "did not finish, cut short before any smoke run judged it" in data["unverified"], data["unverified"]


def test_a_smoke_failure_is_told_once_not_also_as_unverified(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    promoted(ledger, A)
    ledger.append("golden", stack="prod", target="local", image=B, suite="smoke", passed=False, role="prod",
                  failures=["case x: red"], trigger="test")
    StackDir(home, "prod").pin(B, reason="deploy")
    text, data = status(home, capsys)
    assert data["smoke_failed"] and data["unverified"] is None and "UNVERIFIED" not in text, text


def test_the_ledger_it_cannot_read_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    StackDir(home, "prod").pin(A, reason="deploy")
    os.mkfifo(home / "ledger.jsonl")       # not a file: status must neither hang nor call A verified
    _, data = status(home, capsys)
    assert data["unverified"] and "the release ledger" in data["unverified"] and "cannot be read" in data["unverified"]
