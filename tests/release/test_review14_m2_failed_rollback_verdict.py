"""A rollback that failed verifies nothing: its outcome names no image PROD served with its smoke cases passing. So
an operator's failed attempt to put a release PROD was rolled off back (`rollback --to <it>`, whose deploy failed)
does not clear PROD's verdict on that release: promoting it again still needs `--retry-rejected`. Before this test
nothing held that a failed rollback records no `prod_image`, which the gate reads as PROD's word on a digest."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import Target, _released, _staging_passes

from goldgate.release.gate import PromotionRefused
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import RollbackFailed, rollback
from goldgate.release.verification import GoldenPaths

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


def test_a_failed_rollback_to_a_release_prod_was_rolled_off_does_not_clear_that_verdict(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A, B)
        assert rollback(target, ledger, home, paths=paths).ok          # the operator takes PROD off B, back to A
        target.refuse.add(B)
        with pytest.raises(RollbackFailed, match=f"rollback of prod to {B} deploy failed"):
            rollback(target, ledger, home, to=B, paths=paths)
        failed = ledger.entries()[-1]
        assert (failed.kind, failed.get("outcome"), failed.get("prod_image")) == ("rollback", "deploy_failed", None)
        target.refuse.clear()
        _staging_passes(target, ledger, paths, B)
        with pytest.raises(PromotionRefused, match=r"prod_verdict: .*went to prod and an operator's rollback took "
                                                   r"prod off it"):
            promote(target, ledger, home, paths=paths)
        assert target.pins["prod"] == A
        assert promote(target, ledger, home, paths=paths, retry_rejected=True).ok
    assert target.pins["prod"] == B
