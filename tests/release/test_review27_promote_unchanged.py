"""A promotion whose PROD deploy is refused before PROD's pin moves (a RunPod key RunPod refuses, say) changes
nothing, so nothing is rolled back: the automatic rollback was refused the same way, and recorded as a failed
rollback of a PROD that never changed, which read as PROD being on no verified release."""

from __future__ import annotations

from pathlib import Path

from release_support import StandInApi, standin_api
from test_promotion_evidence import A, B, Target, _released, _staging_passes

from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths


def test_a_deploy_refused_before_the_pin_moved_is_not_rolled_back(tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        target.refuse.update({A, B})   # every PROD deploy is refused before any change, the rollback's too
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.outcome == "deploy_failed" and outcome.rollback is None
    assert target.pins["prod"] == A and outcome.prod_image == A
    assert [e for e in ledger.entries() if e.kind == "rollback"] == []
    message = outcome.message()
    assert "the deploy changed nothing, so nothing was rolled back" in message
    assert f"{B} was not judged: fix the cause above, then `goldgate promote` again" in message
    assert "no earlier verified release" not in message


def test_a_deploy_that_failed_after_the_pin_moved_is_still_rolled_back(tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {}, crash={B})   # dies after the pin
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.outcome == "deploy_failed" and outcome.rollback is not None and outcome.rollback.ok
    assert target.pins["prod"] == A
    assert "nothing was rolled back" not in outcome.message()
