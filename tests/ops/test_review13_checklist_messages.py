"""Checklist messages an operator acts on: a golden report dated ahead of this machine's clock (a CI runner whose
clock runs fast) is refused by the promotion gate, and the line says so instead of "stale" at "-120 s ago"; the polling
line says how many places it leaves unnamed."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from test_checklist import healthy  # noqa: F401 -- the module's healthy deployment, a pytest fixture

from goldgate.ops import checklist


def _line(facts, finished_at):
    golden = {**facts.golden, "finished_at": finished_at.isoformat()}
    return next(r for r in checklist.run_checks(dataclasses.replace(facts, golden=golden))
                if r.id == "golden_report_latest")


def test_a_report_from_the_future_names_the_clock_not_staleness(healthy):  # noqa: F811
    line = _line(healthy, healthy.now + timedelta(minutes=7))
    assert line.status == checklist.FAIL
    assert "420 s in the future" in line.evidence and "which `goldgate promote` refuses" in line.evidence
    assert "check the clock of the machine that ran it" in line.evidence and "stale" not in line.evidence
    assert _line(healthy, healthy.now - timedelta(minutes=2)).status == checklist.PASS


def test_the_polling_line_says_how_many_places_it_leaves_unnamed(healthy):  # noqa: F811
    # Before: the first three places alone, as if they were all there was to fix.
    found = tuple(f"service/sweep.py:{n}: RunPod status call inside a loop (line {n - 1})" for n in range(10, 15))
    line = next(r for r in checklist.run_checks(dataclasses.replace(healthy, polling=found)) if r.id == "no_polling")
    assert line.status == checklist.FAIL
    assert line.evidence == "; ".join(found[:3]) + "; and 2 more"
