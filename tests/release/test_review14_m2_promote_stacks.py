"""`promote` moves a digest from a STAGING stack to the stack whose role is prod, and nowhere else: naming STAGING as
the target (`--prod staging`) or PROD as the source is refused before the ledger or any stack is touched. Before
these tests nothing held either refusal: without them a STAGING stack named as `prod` took the image and was
recorded as PROD's release, a rollback target."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import _released, _staging_passes
from test_promotion_partial_failure import Recorded

from goldgate.errors import GoldgateError
from goldgate.release.history import verified_releases
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


@pytest.mark.parametrize(("staging", "prod", "words"), [
    ("staging", "staging", "cannot promote to staging: its role is staging, not prod"),
    ("prod", "prod", "cannot promote from prod: its role is prod"),
])
def test_promoting_to_a_stack_that_is_not_prod_or_from_prod_is_refused_before_anything_changes(
        tmp_path: Path, paths: GoldenPaths, staging: str, prod: str, words: str) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        before, target.deploys = len(ledger.entries()), []
        with pytest.raises(GoldgateError, match=words):
            promote(target, ledger, home, paths=paths, staging=staging, prod=prod)
    assert target.deploys == [] and len(ledger.entries()) == before
    assert target.pins == {"staging": B, "prod": A}
    assert [r.image for r in verified_releases(ledger.entries(), "staging")] == []
