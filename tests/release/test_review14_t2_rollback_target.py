"""The automatic rollback after a failed promotion never goes back to the digest that just failed, even when that
digest is a verified release (a re-promotion of what PROD already runs): it goes to the release before it."""

from __future__ import annotations

from pathlib import Path

from release_support import StandInApi, standin_api
from test_promotion_evidence import Target, _released, _staging_passes
from test_promotion_partial_failure import _broken_on

from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


def test_a_re_promotion_of_prods_release_whose_smoke_fails_rolls_back_to_the_release_before_it(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A, B)      # B is PROD's verified release, A the one before it
        _staging_passes(target, ledger, paths, B)         # STAGING qualifies B again
        _broken_on(api, B)                                # ... and B now fails its smoke cases on PROD
        outcome = promote(target, ledger, home, paths=paths)
        assert outcome.outcome == "smoke_failed" and outcome.image == B
        assert outcome.rollback is not None and outcome.rollback.image == A and outcome.rollback.ok
        assert target.pins["prod"] == A and outcome.prod_image == A
        assert api.image_tag == A                          # PROD serves A again, smoke-tested
    assert f"rolled back automatically to {A} (smoke passed)" in outcome.message()
