"""Review 29 (rel): `goldgate status prod` said nothing when PROD was pinned to a release nothing judged: pin.json
edited by hand, a ledger that lost its entries, or a promotion cut short before its smoke run. It printed the image
as for any verified release. Now an UNVERIFIED line (`unverified` in --json) says so, with the ways out that exist: a
rollback to the last verified release when the ledger has one, the gate (golden on STAGING, then promote --image),
or, for a promotion cut short, the promotion again; for a promotion under way, that its smoke run decides."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.local.state import StackDir
from goldgate.release.ledger import Ledger

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
LOCK_HOLDER = """
import sys, time
from pathlib import Path
from goldgate.release.lock import ReleaseLock
with ReleaseLock(Path(sys.argv[1]), "promote staging -> prod"):
    print("locked", flush=True)
    time.sleep(60)
"""


def _promoted(ledger: Ledger, image: str, before: str | None = None) -> None:
    """What a promotion of `image` to PROD whose smoke cases passed leaves in the ledger."""
    ledger.append("golden", stack="staging", target="local", image=image, suite="full", passed=True, role="staging",
                  failures=[], trigger="test")
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=image, before=before,
                           trigger="test")
    ledger.append("golden", stack="prod", target="local", image=image, suite="smoke", passed=True, role="prod",
                  failures=[], trigger="test")
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", target="local", image=image,
                  before=before, after=image, pinned=image, prod_image=image, outcome="promoted", trigger="test")


def _status(home: Path, capsys: pytest.CaptureFixture[str], stack: str = "prod") -> tuple[str, dict]:
    assert main(["status", stack, "--home", str(home)]) == 0
    text = capsys.readouterr().out
    assert main(["status", stack, "--home", str(home), "--json"]) == 0
    return text, json.loads(capsys.readouterr().out)


def test_prod_pinned_by_hand_to_a_release_nothing_judged_is_unverified_with_the_ways_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    _promoted(Ledger(home), A)
    StackDir(home, "prod").pin(B, reason="by hand")
    text, data = _status(home, capsys)
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
    _promoted(Ledger(home), A)
    StackDir(home, "prod").pin(A, reason="deploy")
    StackDir(home, "staging").pin(B, reason="deploy")
    text, data = _status(home, capsys)
    assert data["unverified"] is None and "UNVERIFIED" not in text, text
    text, data = _status(home, capsys, "staging")
    assert data["unverified"] is None and "UNVERIFIED" not in text, text


def test_a_ledger_that_lost_its_entries_leaves_no_rollback_to_offer(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    StackDir(home, "prod").pin(A, reason="deploy")     # promoted once; the ledger then removed (or a new state dir)
    _, data = _status(home, capsys)
    warning = data["unverified"]
    assert warning and "the ledger holds no verified release of prod to roll back to" in warning, warning
    assert f"`goldgate promote --image {A}`" in warning, warning


def test_a_promotion_cut_short_before_its_smoke_run_says_to_run_it_again(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    _promoted(ledger, A)
    ledger.append("golden", stack="staging", target="local", image=B, suite="full", passed=True, role="staging",
                  failures=[], trigger="test")
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=B, before=A,
                           trigger="test")
    StackDir(home, "prod").pin(B, reason="deploy")      # then Ctrl-C: no smoke run, no outcome
    _, data = _status(home, capsys)
    assert data["unverified"] == (
        f"prod is pinned to {B}, which no promotion verified there: its promotion (ledger #{intent.seq}) did not "
        f"finish before a smoke run judged it; `goldgate promote` tries it again (and smokes it), or `goldgate "
        f"rollback` puts back {A} (not a verdict on it)")


def test_a_promotion_under_way_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    _promoted(ledger, A)
    ledger.append("promotion", phase="intent", stack="prod", target="local", image=B, before=A, trigger="test")
    StackDir(home, "prod").pin(B, reason="deploy")
    # A promotion's process: it holds the release lock (the flock, not only the file naming it) until killed.
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(home)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        _, data = _status(home, capsys)
    finally:
        holder.kill()
        holder.wait()
    warning = data["unverified"]
    assert warning and "which no smoke run has judged there yet: its promotion (ledger #5) is under way" in warning
    assert f"pid {holder.pid}" in warning and "its smoke run decides" in warning, warning
    _, data = _status(home, capsys)        # its holder gone (killed): cut short, as above
    assert "did not finish before a smoke run judged it" in data["unverified"], data["unverified"]


def test_a_smoke_failure_is_told_once_not_also_as_unverified(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    _promoted(ledger, A)
    ledger.append("golden", stack="prod", target="local", image=B, suite="smoke", passed=False, role="prod",
                  failures=["case x: red"], trigger="test")
    StackDir(home, "prod").pin(B, reason="deploy")
    text, data = _status(home, capsys)
    assert data["smoke_failed"] and data["unverified"] is None and "UNVERIFIED" not in text, text


def test_the_ledger_it_cannot_read_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    StackDir(home, "prod").pin(A, reason="deploy")
    os.mkfifo(home / "ledger.jsonl")       # not a file: status must neither hang nor call A verified
    _, data = _status(home, capsys)
    assert data["unverified"] and "the release ledger" in data["unverified"] and "cannot be read" in data["unverified"]
