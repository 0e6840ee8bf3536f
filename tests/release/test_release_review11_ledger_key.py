"""The ledger key: with GOLDGATE_LEDGER_KEY set, every entry goldgate appends carries an HMAC of its canonical form, and
the gate and rollback trust only entries whose MAC verifies. The hash chain alone detects edits, not forgeries: anyone
who can push to the ledger branch can append an entry and recompute the chain. Here the forger is goldgate itself run
without the key (which writes exactly such a chained, MAC-less entry), or with a key of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_cli_errors import one_error_line, run
from test_gate_and_lock import failed
from test_promotion_evidence import Target

from goldgate.release.gate import PromotionRefused
from goldgate.release.history import UnknownRelease
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate, promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
EVIL = "local/worker@sha256:" + "e" * 64
KEY = "0123456789abcdef" * 4          # what `openssl rand -hex 32` gives: 64 characters
OTHER_KEY = "fedcba9876543210" * 4
KEY_ENV, SAVE_ENV = "GOLDGATE_LEDGER_KEY", "GOLDGATE_LEDGER_SAVE"   # spelled out: the CI workflows set them by name


def _golden(target: Target, home: Path, paths: GoldenPaths, image: str) -> Path:
    target.deploy("staging", image, lambda _m: None)
    run = run_golden(target, "staging", Ledger(home), paths=paths, poll_s=0.01)
    assert run.passed
    return run.path


def test_a_golden_run_recorded_without_the_key_does_not_open_the_gate(tmp_path: Path, paths: GoldenPaths,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: `goldgate golden` run anywhere, its ledger line pushed to the branch (chain recomputed), was the
    # recorded golden run the gate asks for, and the digest reached PROD.
    home = tmp_path / "home"
    monkeypatch.delenv(KEY_ENV, raising=False)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        forged = _golden(target, home, paths, A)
        monkeypatch.setenv(KEY_ENV, KEY)
        decision = check_gate(target, Ledger(home), forged)[0]
        assert failed(decision) == ["report_authenticated"]
        detail = next(c.detail for c in decision.conditions if c.name == "report_authenticated")
        assert detail.startswith("ledger #1 (golden) carries no MAC") and KEY not in detail
        with pytest.raises(PromotionRefused, match=r"report_authenticated: ledger #1 \(golden\) carries no MAC"):
            promote(target, Ledger(home), home, report_path=forged, paths=paths)
        assert "prod" not in target.pins
        # The same run recorded under the key qualifies the digest.
        assert check_gate(target, Ledger(home), _golden(target, home, paths, A))[0].passed
        assert promote(target, Ledger(home), home, paths=paths).ok
    assert target.pins["prod"] == A


def test_a_golden_run_recorded_under_another_key_does_not_open_the_gate(tmp_path: Path, paths: GoldenPaths,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv(KEY_ENV, OTHER_KEY)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        report = _golden(target, home, paths, A)
        monkeypatch.setenv(KEY_ENV, KEY)
        decision = check_gate(target, Ledger(home), report)[0]
    assert failed(decision) == ["report_authenticated"]
    assert "ledger #1 (golden) has a MAC that does not verify with GOLDGATE_LEDGER_KEY" in str(decision.to_dict())


def test_a_forged_verified_release_is_never_a_rollback_target(tmp_path: Path, paths: GoldenPaths,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: a "promoted" outcome appended to the ledger branch made its digest the newest verified release, so
    # the next rollback (the automatic one after a failed promotion too) pinned it on PROD.
    home = tmp_path / "home"
    monkeypatch.setenv(KEY_ENV, KEY)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        for image in (A, B):
            _golden(target, home, paths, image)
            assert promote(target, Ledger(home), home, paths=paths).ok
        monkeypatch.delenv(KEY_ENV)
        forged = Ledger(home).append("promotion", phase="outcome", intent_seq=1, stack="prod", image=EVIL,
                                     before=B, after=EVIL, pinned=B, prod_image=EVIL, outcome="promoted",
                                     trigger="ci:github-actions run 1 by someone")
        monkeypatch.setenv(KEY_ENV, KEY)
        with pytest.raises(UnknownRelease, match=rf"not a verified release: ledger #{forged.seq} \(promotion\) "
                                                 "carries no MAC"):
            rollback(target, Ledger(home), home, to=EVIL, paths=paths)
        assert target.pins["prod"] == B
        outcome = rollback(target, Ledger(home), home, paths=paths)
    assert outcome.ok and target.pins["prod"] == A


def test_the_key_reaches_neither_the_ledger_nor_the_save_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The save script is bash running git against the network: it needs to push a file, not to sign entries.
    seen = tmp_path / "save-env"
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SAVE_ENV, f'env > "{seen}"')
    entry = Ledger(tmp_path / "home").append("build", image=A, release_id="r1", trigger="user:t")
    assert entry.mac and entry.authentic
    assert seen.read_text() and KEY not in seen.read_text() and KEY_ENV not in seen.read_text()
    assert KEY not in (tmp_path / "home" / "ledger.jsonl").read_text()


def test_a_keyed_ledger_reads_back_without_the_key(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A newcomer (or the build job, which has no key) reads and extends CI's ledger as before.
    monkeypatch.setenv(KEY_ENV, KEY)
    Ledger(tmp_path).append("build", image=A, release_id="r1", trigger="user:t")
    monkeypatch.delenv(KEY_ENV)
    Ledger(tmp_path).append("build", image=B, release_id="r2", trigger="user:t")
    code, out, _ = run(capsys, tmp_path, "history", "--json")
    assert code == 0 and [("mac" in e) for e in json.loads(out)] == [True, False]
    monkeypatch.setenv(KEY_ENV, KEY)
    assert [e.authentic for e in Ledger(tmp_path).entries()] == [True, False]


def test_a_ledger_key_too_short_to_resist_guessing_is_one_error_line(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "hunter2")
    code, _, err = run(capsys, tmp_path, "history")
    line = one_error_line(err)
    assert code == 1 and "GOLDGATE_LEDGER_KEY is 7 characters long; use at least 32" in line
    assert "hunter2" not in err


def test_history_under_the_key_names_the_entries_the_gate_will_not_trust(capsys: pytest.CaptureFixture,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    Ledger(tmp_path).append("build", image=A, release_id="r1", trigger="user:t")
    monkeypatch.delenv(KEY_ENV)
    Ledger(tmp_path).append("build", image=B, release_id="r2", trigger="user:t")
    monkeypatch.setenv(KEY_ENV, KEY)
    code, out, _ = run(capsys, tmp_path, "history")
    assert code == 0 and out.rstrip().endswith(
        "2 entries; hash chain verified; 1 without a valid MAC for the ledger key (the gate and rollback do not "
        "trust them): #2")
    assert KEY not in out


def test_a_rollback_with_only_unsigned_earlier_releases_says_why_there_is_no_target(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    # The releases verified before the key was introduced are not vouched for by it: the operator is told so, and
    # can promote a new build under the key (or pin one by hand after checking it).
    home = tmp_path / "home"
    monkeypatch.delenv(KEY_ENV, raising=False)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        for image in (A, B):
            _golden(target, home, paths, image)
            assert promote(target, Ledger(home), home, paths=paths).ok
        monkeypatch.setenv(KEY_ENV, KEY)
        with pytest.raises(UnknownRelease, match=r"no earlier verified release to roll back to \(prod runs .*\): "
                                                 r"ledger #\d+ \(promotion\) carries no MAC.*only releases verified "
                                                 "under the ledger key are rollback targets"):
            rollback(target, Ledger(home), home, paths=paths)
    assert target.pins["prod"] == B


def test_a_forged_mac_of_non_ascii_text_is_an_untrusted_entry_not_a_traceback(capsys: pytest.CaptureFixture,
                                                                              tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    monkeypatch.setenv(KEY_ENV, KEY)
    Ledger(tmp_path).append("build", image=A, release_id="r1", trigger="user:t")
    first = json.loads((tmp_path / "ledger.jsonl").read_text())
    body = {"seq": 2, "ts": first["ts"], "kind": "build", "image": B, "release_id": "r2", "trigger": "user:t",
            "prev": first["hash"]}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    with (tmp_path / "ledger.jsonl").open("a") as fh:   # chained correctly, its "mac" non-ASCII
        fh.write(json.dumps({**body, "hash": digest, "mac": "\u00e9" * 64}) + "\n")
    code, out, err = run(capsys, tmp_path, "history")
    assert "Traceback" not in err and code == 0, err
    assert out.rstrip().endswith("1 without a valid MAC for the ledger key (the gate and rollback do not trust "
                                 "them): #2")
