"""A signed ledger without its key: GOLDGATE_LEDGER_KEY left unset by a hurried operator (the runbook's rollback by hand
starts from CI's ledger branch) or missing from a job. Unkeyed, every entry is taken as written, so a line appended
to the branch without the key (a forged "promoted" outcome, a forged golden run) became a rollback target or opened
the gate: the very lines the key exists to stop. Now a PROD decision on a signed ledger needs the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_cli_errors import one_error_line, run
from test_promotion_evidence import Target, _released
from test_review12_forged_rollback_targets import keyed_releases

from goldgate.errors import GoldgateError
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate, promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
EVIL = "local/worker@sha256:" + "e" * 64
KEY = "0123456789abcdef" * 4
KEY_ENV = "GOLDGATE_LEDGER_KEY"


def test_a_rollback_without_the_key_on_a_signed_ledger_never_pins_a_forged_release(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    with keyed_releases(home, paths, monkeypatch, A, B) as target:
        monkeypatch.delenv(KEY_ENV)
        # Appended to the ledger branch without the key: a digest that never ran on STAGING, "verified" on PROD.
        Ledger(home).append("promotion", phase="outcome", intent_seq=1, stack="prod", image=EVIL, before=A,
                            after=EVIL, pinned=B, prod_image=EVIL, outcome="promoted",
                            trigger="ci:github-actions run 1 by someone")
        length = len(Ledger(home).entries())
        # Before: the rollback took the forged line as the newest verified release and pinned EVIL on PROD.
        with pytest.raises(GoldgateError, match=r"cannot roll prod back: .* is signed with a ledger key \(ledger "
                                                   r"#\d+ carries a MAC\) but GOLDGATE_LEDGER_KEY is not set"):
            rollback(target, Ledger(home), home, to=EVIL, paths=paths)
        with pytest.raises(GoldgateError):
            rollback(target, Ledger(home), home, paths=paths)
        assert target.pins["prod"] == B and len(Ledger(home).entries()) == length
        # With the key the forged line is no release at all, and the rollback goes to A.
        monkeypatch.setenv(KEY_ENV, KEY)
        assert rollback(target, Ledger(home), home, paths=paths).image == A
    assert target.pins["prod"] == A


def test_a_golden_run_forged_into_a_signed_ledger_does_not_open_the_gate_without_the_key(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    with keyed_releases(home, paths, monkeypatch, A) as target:
        monkeypatch.delenv(KEY_ENV)
        target.deploy("staging", B, lambda _m: None)
        # Recorded without the key: as good as a line appended by hand.
        forged = run_golden(target, "staging", Ledger(home), paths=paths, poll_s=0.01)
        assert forged.passed
        with pytest.raises(GoldgateError, match="cannot evaluate the gate"):
            check_gate(target, Ledger(home), forged.path)
        with pytest.raises(GoldgateError, match="cannot promote to prod"):
            promote(target, Ledger(home), home, report_path=forged.path, paths=paths)
    assert target.pins["prod"] == A
    assert [e.kind for e in Ledger(home).entries()][-1] == "golden"   # nothing recorded for the refused promotion


def test_an_unsigned_ledger_needs_no_key(tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    # Most teams never set a key: nothing changes for them.
    home = tmp_path / "home"
    monkeypatch.delenv(KEY_ENV, raising=False)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, Ledger(home), home, paths, A, B)
        assert rollback(target, Ledger(home), home, paths=paths).image == A


def test_the_rollback_command_says_which_variable_to_set_in_one_line(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    Ledger(tmp_path, key=KEY.encode()).append("build", image=A, release_id="r1", trigger="user:t")
    code, _, err = run(capsys, tmp_path, "rollback", "--to", A)
    line = one_error_line(err)
    assert code == 1 and "ledger #1 carries a MAC" in line and "set GOLDGATE_LEDGER_KEY" in line
    assert KEY not in err
    # Reading the ledger stays open to anyone: `history` is how the operator finds out.
    assert run(capsys, tmp_path, "history")[0] == 0


def test_release_without_the_key_on_a_signed_ledger_is_refused_before_it_builds(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Refused at the start, not after bringing the stacks up, building and running the golden suite.
    monkeypatch.delenv(KEY_ENV, raising=False)
    Ledger(tmp_path, key=KEY.encode()).append("build", image=A, release_id="r1", trigger="user:t")
    code, _, err = run(capsys, tmp_path, "release")
    line = one_error_line(err)
    assert code == 1 and "cannot release to prod" in line and "set GOLDGATE_LEDGER_KEY" in line
    assert len(Ledger(tmp_path, key=KEY.encode()).entries()) == 1
    assert not (tmp_path / "stacks").exists() and not (tmp_path / "images").exists()
