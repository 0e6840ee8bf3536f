"""P50/P95/P99 stay exact nearest-rank values when job_metrics holds rows the service never writes
(D1 is SQLite: an operator's hand-written UPDATE can store a REAL with a fraction, -2**63, an
infinity, text or a blob in an INTEGER column). The documented rule (service.metrics): a duration
with a fraction counts as its whole milliseconds rounded down, one outside +-(2**62 - 1) ms or no
number at all counts as no value, as NULL does."""

from __future__ import annotations

import math
import random
import sqlite3
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from service_testkit import migrated_memory_db

from service.metrics import compute_sqlite

PERCENTILES = (50, 95, 99)
DURATION_LIMIT_MS = 2**62 - 1  # service.metrics.DURATION_LIMIT_MS, stated here as the documented rule


def counted(value: Any) -> int | None:
    """The plain statement of the rule: the whole milliseconds a stored duration counts as, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if abs(value) > DURATION_LIMIT_MS:
        return None
    return math.floor(value)


def nearest_rank(values: list[Any], p: int) -> int | None:
    ordered = sorted(v for v in map(counted, values) if v is not None)
    return ordered[math.ceil(p * len(ordered) / 100) - 1] if ordered else None


# The report over a few hundred rows takes some thousands of SQLite VM instructions; a search that stops
# halving its interval runs forever. Past this many the query is interrupted (sqlite3.OperationalError).
_MAX_VM_INSTRUCTIONS = 50_000_000


def database(rows: list[tuple[str | None, Any]]) -> sqlite3.Connection:
    conn = migrated_memory_db()
    ticks = [0]

    def runaway() -> int:
        ticks[0] += 1
        return 1 if ticks[0] * 1000 > _MAX_VM_INSTRUCTIONS else 0

    conn.set_progress_handler(runaway, 1000)
    conn.executemany("INSERT INTO job_metrics (job_id, stack, status, e2e_ms, runpod_queue_duration_ms, "
                     "runpod_run_duration_ms, worker_image_tag, created_at) "
                     "VALUES (?, 's', 'completed', ?, ?, ?, ?, '2026-01-01T00:00:00.000Z')",
                     [(f"j{i}", value, value, value, tag) for i, (tag, value) in enumerate(rows)])
    return conn


def test_one_hand_written_fraction_leaves_p50_a_whole_stored_value():
    rng = random.Random(7)
    values: list[Any] = [rng.randint(0, 30_000) for _ in range(200)]
    conn = database([("img@sha256:aa", v) for v in values] + [("img@sha256:aa", 1.5)])
    report = compute_sqlite(conn)
    ordered = sorted(values + [1])
    expected = {f"p{p}": ordered[math.ceil(p * len(ordered) / 100) - 1] for p in PERCENTILES}
    assert report["overall"]["e2e_ms"] == expected
    assert report["by_worker_image_tag"][0]["e2e_ms"] == expected
    assert all(isinstance(v, int) for v in expected.values())


def test_int64_extremes_leave_the_percentiles_exact():
    rng = random.Random(8)
    values: list[Any] = [rng.randint(0, 30_000) for _ in range(200)]
    for extreme in (-(2**63), 2**63 - 1, float("inf"), float("-inf"), 1e300):
        conn = database([("t", v) for v in values] + [("t", extreme)])
        report = compute_sqlite(conn)
        expected = {f"p{p}": nearest_rank(values, p) for p in PERCENTILES}
        assert report["overall"]["run_ms"] == expected, extreme
        assert report["overall"]["count"] == len(values) + 1  # the row still counts as a job


def test_the_largest_int64_beside_a_fraction_is_answered_not_searched_forever():
    # hi = 2**63 - 1 + 1 overflowed into an inexact REAL, whose halves stopped shrinking: the query never ended
    conn = database([("t", 1.5), ("t", 2**63 - 1), ("t", 40), ("t", 7)])
    report = compute_sqlite(conn)
    assert report["overall"]["e2e_ms"] == {"p50": 7, "p95": 40, "p99": 40}
    assert report["by_worker_image_tag"][0]["e2e_ms"] == {"p50": 7, "p95": 40, "p99": 40}


hostile = st.one_of(
    st.none(),
    st.integers(0, 40),  # ties
    st.integers(-(10**6), 10**7),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([-(2**63), 2**63 - 1, DURATION_LIMIT_MS, -DURATION_LIMIT_MS, DURATION_LIMIT_MS + 1,
                     -DURATION_LIMIT_MS - 1]),
    st.floats(-1e6, 1e7, allow_nan=False),
    st.floats(allow_nan=False),  # infinities and REALs beyond int64
    st.sampled_from(["abc", "12.5x", b"\x00\x01"]),
)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["a", "b", None]), hostile), max_size=60))
def test_sql_percentiles_equal_the_documented_rule_on_hostile_rows(rows):
    conn = database(rows)
    # what SQLite stored after the column's INTEGER affinity (2.0 -> 2, "12" -> 12): the rule reads that
    stored = [value for (value,) in conn.execute("SELECT e2e_ms FROM job_metrics ORDER BY rowid")]
    report = compute_sqlite(conn)
    expected = {f"p{p}": nearest_rank(stored, p) for p in PERCENTILES}
    for name in ("e2e_ms", "queue_ms", "run_ms"):
        assert report["overall"][name] == expected, name
    by_tag = {g["worker_image_tag"]: g for g in report["by_worker_image_tag"]}
    for tag, group in by_tag.items():
        mine = [value for (t, _), value in zip(rows, stored, strict=True) if t == tag]
        assert group["e2e_ms"] == {f"p{p}": nearest_rank(mine, p) for p in PERCENTILES}, tag
