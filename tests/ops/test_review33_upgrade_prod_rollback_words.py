"""`goldgate checklist prod`'s prod_same_digest names how PROD came to run its image: after a rollback it said
"promoted from STAGING (ledger #N)" with #N the rollback's entry, sending the reader to a promotion that is not
there."""

from __future__ import annotations

import dataclasses

from test_checklist import IMG_A, healthy  # noqa: F401

from goldgate.ops import checklist
from goldgate.release.ledger import Ledger


def _prod_line(facts) -> tuple[str, str]:
    result = next(r for r in checklist.run_checks(facts) if r.id == "prod_same_digest")
    return result.status, result.evidence


def test_after_a_rollback_the_line_says_rolled_back_not_promoted(healthy, tmp_path) -> None:  # noqa: F811
    ledger = Ledger(tmp_path / "home")
    for entry in healthy.ledger:
        ledger.append(entry.kind, **entry.fields)
    intent = ledger.append("rollback", phase="intent", stack="prod", image=IMG_A)
    outcome = ledger.append("rollback", phase="outcome", intent_seq=intent.seq, stack="prod", image=IMG_A,
                            prod_image=IMG_A, outcome="rolled_back", smoke_passed=True)
    facts = dataclasses.replace(healthy, ledger=tuple(ledger.entries()), images={**healthy.images, "prod": IMG_A})
    status, evidence = _prod_line(facts)
    assert status == checklist.PASS, evidence
    assert f"rolled back to (ledger #{outcome.seq})" in evidence and "promoted" not in evidence, evidence


def test_after_a_promotion_the_line_says_promoted(healthy) -> None:  # noqa: F811
    status, evidence = _prod_line(healthy)
    assert status == checklist.PASS and "promoted from STAGING (ledger #" in evidence, evidence

