"""Review 27 (mutrel): a promotion or rollback whose smoke run did not run (`smoke_not_run`, session 26) leaves PROD
on an unverified release: the release log must say so as an error a team alerts on, with the automatic rollback's
outcome, as it says a `smoke_failed` one. Mutants that logged it as an info `release.recorded`, or dropped the
rollback from its message, survived the suite."""

from __future__ import annotations

from pathlib import Path

from test_review12_release_log import A, B, _lines

from goldgate.release.ledger import Ledger

WHY = "prod runs another workflow_version than stacks/local.yaml declares"


def test_smoke_not_run_outcomes_reach_the_release_log_as_failures(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.append("promotion", phase="intent", stack="prod", image=B, release_id="r2", before=A, trigger="test")
    ledger.append("rollback", phase="intent", stack="prod", image=A, release_id="r1", before=B,
                  reason=f"automatic: promotion of {B} smoke not run", trigger="test")
    ledger.append("rollback", phase="outcome", intent_seq=2, stack="prod", image=A, before=B, after=A,
                  prod_image=None, pinned=A, outcome="smoke_not_run", error=WHY, trigger="test")
    ledger.append("promotion", phase="outcome", intent_seq=1, stack="prod", image=B, before=A, after=A, pinned=A,
                  prod_image=None, outcome="smoke_not_run", error=WHY,
                  rollback={"outcome": "smoke_not_run", "image": A}, trigger="test")
    lines = _lines(tmp_path)
    assert [(line["event"], line["level"]) for line in lines[2:]] == [
        ("release.rollback_failed", "error"), ("release.promotion_failed", "error")]
    promotion = lines[3]
    assert promotion["status"] == "smoke_not_run"
    assert f"automatic rollback to {A}: smoke_not_run" in promotion["message"], promotion["message"]
