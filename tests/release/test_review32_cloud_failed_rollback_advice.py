"""A cloud promotion whose automatic rollback failed too told the operator to look at "PROD's endpoint in RunPod's
console": `goldgate checklist prod --target cloud` reads that endpoint (its image against the pin, rollout, workers,
/health) and judges it, and `goldgate status`, which the local advice names, reads the local stacks only."""

from goldgate.release.gate import GateDecision, commands_for
from goldgate.release.promote import PromotionOutcome
from goldgate.release.rollback import RollbackOutcome

A = "registry.example/worker@sha256:" + "a" * 64
B = "registry.example/worker@sha256:" + "b" * 64


def _failed_twice(target: str) -> str:
    rollback = RollbackOutcome(outcome="smoke_failed", stack="prod", image=A, release_id=None, before=B,
                               prod_image=A, smoke_report=None, smoke_passed=False, reason="automatic",
                               error="smoke: 1 of 1 case failed")
    return PromotionOutcome(outcome="smoke_failed", image=B, release_id=None, before=A, prod_image=A,
                            gate=GateDecision((), B), smoke_report=None, smoke_passed=False, rollback=rollback,
                            duration_s=1.0, commands=commands_for(target)).message()


def test_a_cloud_prod_whose_rollback_failed_too_is_sent_to_the_cloud_checklist_and_the_worker_logs() -> None:
    said = _failed_twice("cloud")
    assert "fix it (the smoke errors, `goldgate checklist prod --target cloud`, and the worker logs in RunPod's " \
           f"console), then `goldgate rollback --to {A} --target cloud`" in said, said
    assert "goldgate status" not in said


def test_a_local_prod_whose_rollback_failed_too_is_still_sent_to_goldgate_status() -> None:
    said = _failed_twice("local")
    assert "fix it (the smoke errors, `goldgate status prod`), then `goldgate rollback --to " in said, said
