"""Review 29 (upg): a team that ran goldgate at b48ed19 upgrades to today's code with the same state dir.

The ledger below is written as b48ed19 writes it (each entry's fields as its promote, rollback and golden runs record
them, from a real run of that commit: two releases, a manual rollback, a promotion whose smoke failed and whose
automatic rollback failed too, then a rollback --to once the fault was fixed). Today's `status prod` must not call the
release that code verified UNVERIFIED.

With GOLDGATE_LEDGER_KEY set after those releases (docs/RUNBOOK.md, Rollback: "Releases verified before the key was
set carry none"), the release PROD runs is no verified one under the key, and `status` says so; it said "no
promotion or rollback in the ledger put it there (it was pinned outside goldgate, its pin.json edited by hand, or
the ledger lost its entries)", which sent the operator looking for a hand edit that never happened. It now names the
entry that verified it and why the key does not vouch for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.local.state import StackDir
from goldgate.release.ledger import Ledger

KEY_ENV = "GOLDGATE_LEDGER_KEY"       # spelled out: the operator sets it by name
KEY = "k" * 64
OTHER_KEY = b"o" * 64
A = "local/worker@sha256:" + "d1e0a8b2" * 8
B = "local/worker@sha256:" + "049f843e" * 8
REPORT = "/srv/goldgate/scripts/golden-tests/reports/latest.json"


def _golden(ledger: Ledger, stack: str, image: str, passed: bool = True) -> None:
    """A golden run's entry as b48ed19 writes it (full on STAGING, smoke on PROD)."""
    smoke = stack == "prod"
    ledger.append("golden", stack=stack, target="local", image=image, suite="smoke" if smoke else "full",
                  role=stack, passed=passed, cases=[], suite_cases=2 if smoke else 6, references_updated=False,
                  failures=[] if passed else ["flux-fox: completed: status failed"], mean_latency_s=1.9,
                  p95_latency_s=2.4, wall_time_s=2.5, cases_dir="scripts/golden-tests/cases", report=REPORT,
                  report_sha256="0" * 64, trigger="user:ops")


def _release(ledger: Ledger, image: str, before: str | None) -> None:
    """build -> deploy STAGING -> golden -> promotion intent -> smoke -> promoted, with b48ed19's fields."""
    ledger.append("build", image=image, digest=image.split("@")[1], release_id=f"2026.11.0-{image[-12:]}",
                  repo="local/worker", reused=False, target="local", git_commit="c" * 40, models_sha256="m" * 64,
                  workflow_version="2026.11.0", workflows_sha256="w" * 64, workflow_renders={}, trigger="user:ops")
    ledger.append("deploy", stack="staging", target="local", image=image, before=before, after=image,
                  rollout={"complete": True}, trigger="user:ops")
    _golden(ledger, "staging", image)
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=image,
                           release_id=f"2026.11.0-{image[-12:]}", before=before, report=REPORT,
                           report_sha256="0" * 64, trigger="user:ops")
    _golden(ledger, "prod", image)
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", target="local", image=image,
                  release_id=f"2026.11.0-{image[-12:]}", before=before, after=image, pinned=image, prod_image=image,
                  outcome="promoted", error=None, rollback=None, smoke_passed=True, smoke_report=REPORT,
                  trigger="user:ops")


def _rollback(ledger: Ledger, image: str, before: str, passed: bool = True, reason: str = "manual") -> None:
    intent = ledger.append("rollback", phase="intent", stack="prod", target="local", image=image, before=before,
                           served=before, reason=reason, release_id=f"2026.11.0-{image[-12:]}", trigger="user:ops")
    _golden(ledger, "prod", image, passed)
    ledger.append("rollback", phase="outcome", intent_seq=intent.seq, stack="prod", target="local", image=image,
                  before=before, after=image, pinned=image, served=image, prod_image=image if passed else None,
                  outcome="rolled_back" if passed else "smoke_failed", reason=reason, error=None,
                  smoke_passed=passed, smoke_report=REPORT, release_id=f"2026.11.0-{image[-12:]}",
                  trigger="user:ops")


def _old_world(home: Path) -> int:
    """The b48ed19 run's ledger; PROD left on A by the last rollback (whose outcome's seq is returned)."""
    ledger = Ledger(home, key=None)
    _release(ledger, A, None)
    _release(ledger, B, A)
    _rollback(ledger, A, B)
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=B, before=A,
                           release_id=f"2026.11.0-{B[-12:]}", report=REPORT, report_sha256="0" * 64,
                           retry_rejected=True, trigger="user:ops")
    _golden(ledger, "prod", B, passed=False)
    _rollback(ledger, A, B, passed=False, reason="smoke_failed")
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", target="local", image=B,
                  before=A, after=A, pinned=A, prod_image=A, outcome="smoke_failed", error="smoke failed",
                  rollback="smoke_failed", smoke_passed=False, smoke_report=REPORT, trigger="user:ops")
    _rollback(ledger, A, A)
    StackDir(home, "prod").pin(A, reason="deploy")
    StackDir(home, "staging").pin(B, reason="deploy")
    return ledger.entries()[-1].seq


def _status(home: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, dict]:
    assert main(["status", "prod", "--home", str(home)]) == 0
    text = capsys.readouterr().out
    assert main(["status", "prod", "--home", str(home), "--json"]) == 0
    return text, json.loads(capsys.readouterr().out)


def test_prod_the_old_code_promoted_and_verified_is_not_unverified(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    home = tmp_path / "home"
    _old_world(home)
    text, data = _status(home, capsys)
    assert data["image"] == A
    assert data["unverified"] is None and data["smoke_failed"] is None, data
    assert "UNVERIFIED" not in text and "SMOKE FAILED" not in text, text


def test_a_key_set_after_the_old_releases_names_the_unsigned_entry_not_a_hand_edit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.delenv(KEY_ENV, raising=False)
    last = _old_world(home)
    monkeypatch.setenv(KEY_ENV, KEY)
    text, data = _status(home, capsys)
    warning = data["unverified"]
    assert warning and "UNVERIFIED" in text, text
    assert "pin.json edited by hand" not in warning and "no promotion or rollback in the ledger put it" not in warning
    assert warning.startswith(f"prod is pinned to {A}, which no promotion or rollback verified there under the "
                              f"ledger key: its rollback (ledger #{last}) verified it there, but carries no MAC: it "
                              f"was recorded without {KEY_ENV} (before the key was set)"), warning
    assert "the ledger holds no release of prod verified under the key to roll back to" in warning, warning
    assert f"`goldgate promote --image {A}` with the key set" in warning, warning


def test_an_entry_signed_under_another_key_is_named_as_such(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.delenv(KEY_ENV, raising=False)
    ledger = Ledger(home, key=OTHER_KEY)
    _release(ledger, A, None)
    StackDir(home, "prod").pin(A, reason="deploy")
    monkeypatch.setenv(KEY_ENV, KEY)
    _, data = _status(home, capsys)
    warning = data["unverified"]
    assert warning and (f"its promotion (ledger #6) verified it there, but has a MAC that does not verify with "
                        f"{KEY_ENV}: it was forged, or recorded under another key") in warning, warning
