"""The cloud checklist's D1 retention line, for a stack that declares no retention, counts a recorded prune only
when it finished within the last 31 days: one recorded as finished in the future (a machine whose clock ran ahead
wrote it) is no evidence that D1 is pruned."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from goldgate import spec as specs
from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts


@pytest.mark.parametrize(("finished", "status"), [
    (timedelta(days=-2), checklist.PASS),
    (timedelta(days=-40), checklist.FAIL),
    (timedelta(days=3), checklist.FAIL),
])
def test_a_recorded_prune_counts_only_from_the_last_31_days(finished: timedelta, status: str) -> None:
    prod = specs.load_pulumi("prod")
    prod = dataclasses.replace(prod, database=dataclasses.replace(prod.database, retention=None))
    now = datetime.now(UTC)
    record = {"finished_at": (now + finished).isoformat(timespec="seconds"), "keep_days": 30, "deleted": {"jobs": 5}}
    got, evidence = checklist.d1_retention(Facts(stack="prod", now=now, target="cloud", specs={"prod": prod},
                                                 prune=record))
    assert got == status, evidence
