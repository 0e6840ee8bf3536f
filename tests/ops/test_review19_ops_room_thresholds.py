"""The local `database_room` line at its thresholds: FAIL (and the checklist's exit 1) under 256 MiB free, WARN
under 1 GiB, or under 10 % of the disk while that is also under D1's 10 GB; PASS above."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from goldgate import spec as specs
from goldgate.ops import checklist
from goldgate.ops.checklist_facts import DatabaseRoom, Facts

MIB, GIB = 1024 ** 2, 1024 ** 3


@pytest.mark.parametrize(("free", "total", "status"), [
    (checklist.DISK_FAIL_BYTES - MIB, 500 * GIB, checklist.FAIL),
    (checklist.DISK_FAIL_BYTES + MIB, 500 * GIB, checklist.WARN),
    (GIB - MIB, 5 * GIB, checklist.WARN),
    (GIB + MIB, 5 * GIB, checklist.PASS),            # 20 % free
    (9 * GIB, 100 * GIB, checklist.WARN),            # 9 %, and under 10 GB
    (int(9.5 * GIB), 100 * GIB, checklist.PASS),     # 9.5 %, but over 10 GB: room for a database D1's size
])
def test_the_local_line_at_its_thresholds(free: int, total: int, status: str) -> None:
    room = DatabaseRoom("/home/op/.goldgate/stacks/staging/db.sqlite", 5 * MIB, free_bytes=free, total_bytes=total)
    facts = Facts(stack="staging", now=datetime.now(UTC), specs={"staging": specs.load_local("staging")}, room=room)
    got, evidence = checklist.database_room(facts)
    assert got == status, evidence
    results = [checklist.CheckResult("database_room", "s", "l", got, evidence)]
    assert bool(checklist.failed(results)) == (status == checklist.FAIL)  # only a FAIL makes the exit 1
