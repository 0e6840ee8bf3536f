"""GET /api/jobs reads at most about `limit` rows whatever the filters: each combination the route allows reads one
of migration 0012's indexes in its order (no scan of jobs, no sort in a temporary B-tree), with and without the
planner's statistics (ANALYZE); and the work of a page (SQLite's VM steps, counted by a progress handler called on
every step) is the same over a client with 4,000 old jobs among 6,000 as over one with 16,000 among 24,000, for the
rare status too."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from service import jobs
from service.joblist import INDEXES, Listing, page_statement
from service.migrate import apply_sqlite

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
T0 = 1_800_000_000.0
CURSOR = ("2027-01-15T09:00:00.000Z", "8" * 32)
AFTER = "2027-01-15T08:30:00.000Z"


def _database(alices: int, others: int = 2000) -> sqlite3.Connection:
    """`alices` jobs of alice's (one in 100 failed, the rest completed) among `others` of other clients' and the
    API token's, a second apart, the oldest alice's."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_sqlite(conn, MIGRATIONS)
    rows = []
    for i in range(alices + others):
        client = "alice" if i < alices else (f"client-{i % 7}" if i % 8 else None)
        status = "failed" if i % 100 == 99 else "completed"
        rows.append((f"{i:032x}", "test", "sdxl-txt2img", "v1", "{}", f"{i:032x}", status, jobs.iso_ms(T0 + i),
                     int((T0 + i) * 1000), jobs.iso_ms(T0 + i), client))
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                     "created_at, created_at_ms, updated_at, client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    return conn


LISTINGS = [Listing(client, statuses, after, 50, before) for client, statuses, after, before in itertools.product(
    (None, "alice"), (None, frozenset({"failed"}), frozenset({"queued", "in_progress"})), (None, AFTER),
    (None, CURSOR))]


@pytest.mark.parametrize("analyzed", [False, True])
def test_every_listing_reads_its_index_in_order_without_a_scan_of_jobs_or_a_sort(analyzed: bool) -> None:
    conn = _database(4000)
    if analyzed:
        conn.execute("ANALYZE")
    for listing in LISTINGS:
        sql, params = page_statement(listing)
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        assert len(plan) == 1 and f"jobs USING INDEX {INDEXES[listing.client is not None]}" in plan[0], (listing, plan)
        # a SCAN of the index is its walk from the newest entry, which the LIMIT stops
        assert "TEMP B-TREE" not in plan[0] and (plan[0].startswith("SEARCH") or listing.client is None), plan


def _steps(conn: sqlite3.Connection, listing: Listing) -> int:
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    sql, params = page_statement(listing)
    conn.set_progress_handler(count, 1)
    try:
        rows = conn.execute(sql, params).fetchall()
    finally:
        conn.set_progress_handler(None, 1)
    assert len(rows) == listing.limit + 1
    return steps[0]


def test_a_pages_work_does_not_grow_with_the_clients_old_jobs_whatever_the_filter() -> None:
    small, big = _database(4000), _database(16000, 8000)  # alice's old jobs and the others' newer ones, 4 times
    for listing in LISTINGS:
        assert _steps(big, listing) == _steps(small, listing), listing
    wide = Listing("alice", frozenset({"failed"}), None, 200)
    assert _steps(big, wide) < 4.5 * _steps(big, Listing("alice", frozenset({"failed"}), None, 50))
