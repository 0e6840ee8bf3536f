"""Mutation audit (session 29): a rollback off a release nothing judged on PROD is no verdict on it (reason
NEVER_JUDGED), but one off a release whose smoke run failed there is: the gate then refuses `promote --image` it as
before, an operator's rollback having taken PROD off it."""

from __future__ import annotations

from pathlib import Path

import pytest
from promotion_support import released
from test_promotion_evidence import B, C, _staging_passes
from test_review29_rel_hand_pinned_prod import LocalLike, _pin_by_hand

from goldgate.release.gate import PromotionRefused
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths


def test_a_rollback_off_a_release_whose_smoke_run_failed_on_prod_is_a_verdict(tmp_path: Path,
                                                                             paths: GoldenPaths) -> None:
    with released(tmp_path, paths, B, make=lambda api: LocalLike(api, {})) as r:
        _staging_passes(r.target, r.ledger, paths, C)
        _pin_by_hand(r.target, C)
        r.ledger.append("golden", stack="prod", target="local", image=C, suite="smoke", passed=False, role="prod",
                        failures=["case x: red"], trigger="test")
        back = rollback(r.target, r.ledger, r.home, paths=paths)
        assert back.ok and r.target.pins["prod"] == B
        [reason] = [e.get("reason") for e in r.ledger.entries()
                    if e.kind == "rollback" and e.get("phase") == "outcome"][-1:]
        assert reason == "manual"
        _staging_passes(r.target, r.ledger, paths, C)
        with pytest.raises(PromotionRefused, match="an operator's rollback took prod off it"):
            promote(r.target, r.ledger, r.home, paths=paths, expected_image=C)
    assert r.target.pins["prod"] == B
