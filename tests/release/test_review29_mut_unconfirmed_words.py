"""Review 29 (mut): a rollback whose deploy was applied but whose rollout could not be confirmed says so on its
outcome line: PROD serves, or is rolling to, the image, which "deploy_failed" alone does not say."""

from __future__ import annotations

from pathlib import Path

import pytest
from promotion_support import released
from test_promotion_evidence import A, B
from test_review28_relfix_unconfirmed_gate import Unwatched

from goldgate.release.rollback import RollbackFailed, rollback
from goldgate.release.verification import GoldenPaths


def test_a_rollback_applied_unconfirmed_says_so_on_its_outcome_line(tmp_path: Path, paths: GoldenPaths) -> None:
    said: list[str] = []
    with released(tmp_path, paths, A, B, make=Unwatched) as r:
        r.target.unwatched.add(("prod", A))
        with pytest.raises(RollbackFailed):
            rollback(r.target, r.ledger, r.home, paths=paths, progress=said.append)
    assert f"rollback of prod: deploy_failed (prod pinned to {A}, its rollout not confirmed)" in said, said
