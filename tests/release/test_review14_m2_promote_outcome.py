"""A promotion records its outcome even when PROD's pin cannot be read once more at its very end (a Pulumi call that
fails once, a stack file being rewritten). Before, that last read raised out of `promote` after PROD had taken the
digest and its smoke cases had passed: the intent stayed open, the next command recorded the promotion as
interrupted, the release was never verified (no rollback target), and a plain `goldgate rollback` then "finished"
the lost promotion by taking PROD back off the release that had passed. A rollback already recorded the same read
as unknown."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import Target, _released, _staging_passes

from goldgate.errors import GoldgateError
from goldgate.release.history import interrupted, last_verified
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


class PinUnreadableAfterSmoke(Target):
    """PROD's pin cannot be read once, right after PROD's smoke run has been recorded."""

    def __init__(self, api: StandInApi, pins: dict[str, str], ledger: Ledger) -> None:
        super().__init__(api, pins)
        self.ledger, self.armed, self.failed_reads = ledger, False, 0

    def current_image(self, stack: str) -> str | None:
        last = self.ledger.entries()[-1] if self.armed and stack == "prod" else None
        if last is not None and last.kind == "golden" and last.get("suite") == "smoke" and not self.failed_reads:
            self.failed_reads += 1
            raise GoldgateError("cannot read prod's pin: the stack file is being rewritten")
        return super().current_image(stack)


def test_a_promotion_whose_smoke_passed_is_recorded_as_promoted_when_the_last_pin_read_fails(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = PinUnreadableAfterSmoke(api, {}, ledger)
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        target.armed = True
        outcome = promote(target, ledger, home, paths=paths)
    assert target.failed_reads == 1
    assert outcome.ok and outcome.smoke_passed and outcome.image == B
    assert outcome.message() == f"PROD now serves {B} (smoke passed)"
    last = ledger.entries()[-1]
    assert (last.kind, last.get("phase"), last.get("outcome"), last.get("prod_image")) == (
        "promotion", "outcome", "promoted", B)
    assert last.get("pinned") is None            # not read: recorded as unknown, not guessed
    assert interrupted(ledger.entries()) == []
    assert last_verified(ledger.entries()).image == B
    assert last_verified(ledger.entries(), exclude=B).image == A


class RunnerLost(BaseException):
    """The CI runner vanished: nothing in the process gets to record anything more."""


class LostAfterSmoke(PinUnreadableAfterSmoke):
    def current_image(self, stack: str) -> str | None:
        try:
            return super().current_image(stack)
        except GoldgateError:
            raise RunnerLost from None


def test_a_promotion_lost_after_its_smoke_passed_on_prod_can_be_rerun(tmp_path: Path, paths: GoldenPaths) -> None:
    """The smoke run that passed on PROD is no verdict against the digest: re-running the promotion whose runner was
    lost after it promotes, without --retry-rejected."""
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = LostAfterSmoke(api, {}, ledger)
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        target.armed = True
        with pytest.raises(RunnerLost):
            promote(target, ledger, home, paths=paths)
        smoke = ledger.entries()[-1]
        assert (smoke.kind, smoke.get("stack"), smoke.get("image"), smoke.get("passed")) == ("golden", "prod", B, True)
        target.armed = False
        again = promote(target, ledger, home, paths=paths)
    assert again.ok and again.image == B and target.pins["prod"] == B
    assert [c.name for c in again.gate.conditions if c.name == "prod_verdict"] == []
    assert last_verified(ledger.entries()).image == B
