"""The cap's count of jobs in flight (service/jobs.py, SQL) and transitions.lifetime_ms (Python: e2e and timing
plausibility) judge a job's lifetime alike for every run policy a row can hold, a recorded /run timeout over the
hour the service allows included (a database written by hand, or restored from elsewhere): before, the SQL capped
it at an hour and Python did not, so a job left the cap's count while lifetime_ms still called it alive."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from service_testkit import MIGRATIONS

from goldgate.migrations import apply_sqlite
from service import jobs
from service.transitions import lifetime_ms

NOW_MS = 1_800_000_000_000


@pytest.fixture
def conn(tmp_path: Path) -> Any:
    db = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    apply_sqlite(db, MIGRATIONS)
    yield db
    db.close()


def _in_flight(conn: sqlite3.Connection) -> int:
    statement = jobs.in_flight_statement(NOW_MS / 1000, 1_000_000)
    return conn.execute(statement.sql, statement.params).fetchone()[0]


@pytest.mark.parametrize("timeout", [3_600_001, 86_400_000, 10**13])
@pytest.mark.parametrize("ttl", [None, 3_600_000, 7 * 86_400_000])
def test_a_run_timeout_over_an_hour_is_judged_alike_by_the_count_and_lifetime_ms(conn, ttl: Any,
                                                                                  timeout: int) -> None:
    life = lifetime_ms({"policy_ttl_ms": ttl, "run_timeout_ms": timeout})
    for n, age in enumerate((life - 1, life, life + 1)):
        conn.execute("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                     "created_at, created_at_ms, updated_at, policy_ttl_ms, run_timeout_ms) VALUES "
                     "(?, 's', 'w', 'v', '{}', 't', 'queued', 'x', ?, 'x', ?, ?)",
                     (f"{n:032x}", NOW_MS - age, ttl, timeout))
    # alive while younger than its lifetime, as lifetime_ms says: the one just inside it counts, the others not
    assert _in_flight(conn) == 1
    assert life <= jobs.MAX_LIFETIME_MS  # no job outlives the oldest creation time the count reads from
