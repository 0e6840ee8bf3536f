"""Which earlier release a rollback goes to, under the ledger key: only entries recorded under the key may steer it.

Whoever can push to the ledger branch can append a chained line without the key (goldgate run without it writes
exactly such a line). Under the key such a line must not decide the rollback target: not by claiming a rollback took
PROD off the newest verified release (the automatic rollback then skipped it and pinned an older one), not by
claiming a change was interrupted (a plain `goldgate rollback` then "finished" it to a release of the forger's
choosing), and not through `reconcile`, which closed a forged open intent with an outcome signed under the key."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import Target, _released

from goldgate.release.history import interrupted, last_verified
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import StalePin, check_pin_current, rollback
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
C = "local/worker@sha256:" + "c" * 64
D = "local/worker@sha256:" + "d" * 64
KEY = "0123456789abcdef" * 4
KEY_ENV = "GOLDGATE_LEDGER_KEY"
FORGER = "ci:github-actions run 1 by someone"


@contextlib.contextmanager
def keyed_releases(home: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch, *images: str,
                   **target_options: Any) -> Iterator[Target]:
    """Under the ledger key, a target whose ledger holds `images` qualified on STAGING and promoted, oldest first."""
    monkeypatch.setenv(KEY_ENV, KEY)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {}, **target_options)
        _released(target, Ledger(home), home, paths, *images)
        yield target


def _forge(home: Path, monkeypatch: pytest.MonkeyPatch, kind: str, **fields: object) -> None:
    """Append a chained line without the key, as anyone who can push to the ledger branch can."""
    monkeypatch.delenv(KEY_ENV)
    Ledger(home).append(kind, **fields, trigger=FORGER)
    monkeypatch.setenv(KEY_ENV, KEY)


def test_a_forged_rollback_off_the_newest_release_does_not_send_the_automatic_rollback_further_back(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    with keyed_releases(home, paths, monkeypatch, A, B, crash={C}) as target:
        # Before: this line put B in the set of releases "a rollback took PROD off", so the automatic rollback after
        # the failed promotion below skipped B, the release PROD ran, and pinned A.
        _forge(home, monkeypatch, "rollback", phase="outcome", intent_seq=1, stack="prod", image=A, before=B,
               after=A, pinned=B, prod_image=None, outcome="deploy_failed", reason="automatic")
        assert last_verified(Ledger(home).entries(), exclude=C).image == B
        target.deploy("staging", C, lambda _m: None)
        assert run_golden(target, "staging", Ledger(home), paths=paths, poll_s=0.01).passed
        outcome = promote(target, Ledger(home), home, paths=paths)
    assert outcome.outcome == "deploy_failed" and outcome.rollback is not None
    assert outcome.rollback.image == B and outcome.rollback.ok
    assert target.pins["prod"] == B


def test_a_forged_interrupted_rollback_does_not_choose_where_a_plain_rollback_goes(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    with keyed_releases(home, paths, monkeypatch, A, B, C) as target:
        # Before: the newest change outcome was this one, so `goldgate rollback` "finished" the interrupted rollback
        # to A, two releases back, instead of going to the previous release, B.
        _forge(home, monkeypatch, "rollback", phase="outcome", intent_seq=1, stack="prod", image=A, before=C,
               after=C, pinned=C, prod_image=None, outcome="interrupted", reason="automatic")
        outcome = rollback(target, Ledger(home), home, paths=paths)
    assert outcome.ok and outcome.image == B
    assert target.pins["prod"] == B


def test_a_forged_open_intent_is_not_closed_under_the_key_nor_steers_the_rollback(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    with keyed_releases(home, paths, monkeypatch, A, B, C) as target:
        # Before: `reconcile` closed this intent with an "interrupted" outcome signed under the key, which then sent
        # the rollback to the intent's image, A.
        _forge(home, monkeypatch, "rollback", phase="intent", stack="prod", image=A, before=C, reason="automatic")
        assert interrupted(Ledger(home).entries()) == []
        outcome = rollback(target, Ledger(home), home, paths=paths)
    assert outcome.ok and outcome.image == B
    assert target.pins["prod"] == B
    signed = [e for e in Ledger(home).entries() if e.kind == "rollback" and e.get("outcome") == "interrupted"]
    assert signed == []


def test_an_interrupted_change_recorded_under_the_key_is_still_closed_and_finished(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    # The other side: a real rollback intent (signed) whose runner was lost is still reconciled and finished.
    home = tmp_path / "home"
    with keyed_releases(home, paths, monkeypatch, A, B, C) as target:
        Ledger(home).append("rollback", phase="intent", stack="prod", image=A, before=C, reason="manual",
                            trigger="user:operator")
        assert [i.image for i in interrupted(Ledger(home).entries())] == [A]
        outcome = rollback(target, Ledger(home), home, paths=paths)
    assert outcome.ok and outcome.image == A
    assert target.pins["prod"] == A


def test_a_forged_outcome_naming_a_stale_pin_does_not_lift_the_stale_pin_refusal(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    with keyed_releases(home, paths, monkeypatch, A, B) as target:
        target.pins["prod"] = A  # a re-run of an earlier CI run: its stack file still pins A, PROD runs B
        with pytest.raises(StalePin):
            check_pin_current(target, Ledger(home), "prod")
        # Before: the last outcome, forged, "left" PROD on the stale pin, so the refusal was lifted and the rollback
        # below went ahead from a stack file older than PROD's last change.
        _forge(home, monkeypatch, "rollback", phase="outcome", intent_seq=1, stack="prod", image=A, before=B,
               after=A, pinned=A, prod_image=A, outcome="rolled_back", reason="operator")
        with pytest.raises(StalePin):
            check_pin_current(target, Ledger(home), "prod")


def test_a_forged_outcome_does_not_close_a_real_interrupted_change(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    with keyed_releases(home, paths, monkeypatch, A, B, C) as target:
        intent = Ledger(home).append("rollback", phase="intent", stack="prod", image=A, before=C, reason="manual",
                                     trigger="user:operator")
        _forge(home, monkeypatch, "rollback", phase="outcome", intent_seq=intent.seq, stack="prod", image=A,
               before=C, after=C, pinned=C, prod_image=None, outcome="deploy_failed", reason="manual")
        assert [i.intent_seq for i in interrupted(Ledger(home).entries())] == [intent.seq]
        outcome = rollback(target, Ledger(home), home, paths=paths)
    assert outcome.ok and outcome.image == A
