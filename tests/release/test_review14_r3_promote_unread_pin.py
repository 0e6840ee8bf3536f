"""A failed promotion or rollback whose last read of PROD's pin fails (observed_pin records it as unknown) says so:
its message read "PROD is pinned to None", an image name no command takes, where the operator looks for what PROD
runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import Target, _released, _staging_passes

from goldgate.errors import GoldgateError
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import RollbackFailed, rollback
from goldgate.release.verification import GoldenPaths

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


class PinUnreadableAfterDeploy(Target):
    """Once armed, PROD refuses the deploy; from then on its pin cannot be read (the stack file being rewritten)."""

    def __init__(self, api: StandInApi, pins: dict[str, str]) -> None:
        super().__init__(api, pins)
        self.armed, self.deployed = True, False

    def deploy(self, stack, image, progress):
        if stack == "prod" and self.armed:
            self.deployed = True
        return super().deploy(stack, image, progress)

    def current_image(self, stack: str) -> str | None:
        if stack == "prod" and self.deployed:
            raise GoldgateError("cannot read prod's pin: the stack file is being rewritten")
        return super().current_image(stack)


def test_a_failed_promotion_whose_last_pin_read_fails_names_no_image_called_none(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=B)) as api:
        target = PinUnreadableAfterDeploy(api, {})
        _staging_passes(target, ledger, paths, B)
        target.refuse.add(B)
        outcome = promote(target, ledger, home, paths=paths)
    assert target.deployed and outcome.outcome == "deploy_failed" and outcome.prod_image is None
    message = outcome.message()
    assert "None" not in message, message
    assert "PROD is pinned to no image goldgate could read" in message, message
    assert ledger.entries()[-1].get("phase") == "outcome"


def test_a_failed_rollback_whose_last_pin_read_fails_names_no_image_called_none(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = PinUnreadableAfterDeploy(api, {})
        target.armed = False
        _released(target, ledger, home, paths, A, B)
        target.armed = True
        target.refuse.add(A)
        with pytest.raises(RollbackFailed) as failed:
            rollback(target, ledger, home, to=A, paths=paths)
    assert target.deployed
    message = str(failed.value)
    assert "None" not in message, message
    assert "prod is pinned to no image goldgate could read" in message, message
