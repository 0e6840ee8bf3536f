"""The metrics report's searches over durations as they come (most jobs quick, a long tail of slow ones) step
fewer index rows than counting the half on the rank's side did, and a report over every row carries no
`since` condition: the same answers, about a quarter less work. Work is counted in SQLite VM instructions,
which do not depend on the machine's speed; bench/metrics_query.py measures the time."""

from __future__ import annotations

import hashlib
import random
import sqlite3

from service_testkit import MIGRATIONS

from service.metrics import compute_sqlite, queries
from service.migrate import apply_sqlite


def skewed_database(rows: int = 20_000) -> sqlite3.Connection:
    """Two releases; queue and run times log-normal (a few seconds, a tail of slow jobs), e2e their sum."""
    rng = random.Random(7)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_sqlite(conn, MIGRATIONS)
    values = []
    for i in range(rows):
        tag = f"acme/worker@sha256:{hashlib.sha256(str(i * 2 // rows).encode()).hexdigest()}"
        queue, run = int(rng.lognormvariate(8, 0.5)), int(rng.lognormvariate(8, 0.5))
        values.append((f"j{i}", queue + run, queue, run, tag, f"2026-01-01T00:{i // 600 % 60:02d}:{i % 60:02d}.000Z"))
    conn.executemany("INSERT INTO job_metrics (job_id, stack, status, e2e_ms, runpod_queue_duration_ms, "
                     "runpod_run_duration_ms, worker_image_tag, created_at) VALUES (?, 's', 'completed', ?, ?, ?, ?, ?)",
                     values)
    conn.execute("ANALYZE")
    return conn


def instructions(conn: sqlite3.Connection, statements: list[str], params: tuple = ()) -> int:
    """SQLite VM instructions, in hundreds."""
    ticks = [0]

    def tick() -> int:
        ticks[0] += 1
        return 0

    conn.set_progress_handler(tick, 100)
    for sql in statements:
        conn.execute(sql, params).fetchall()
    conn.set_progress_handler(None, 0)
    return ticks[0]


def test_the_report_over_skewed_durations_costs_under_21_plain_scans_of_its_rows():
    conn = skewed_database()
    scan = instructions(conn, ["SELECT COUNT(*), SUM(e2e_ms) FROM job_metrics"])
    report = instructions(conn, [sql for _, sql in queries(with_since=False)])
    # 24.9 scans when each search counted the half on the rank's side and every row was tested against a NULL since
    assert report < 21 * scan, (report, scan)


def test_a_report_over_every_row_answers_as_one_since_the_first_row():
    conn = skewed_database(3_000)
    everything, since_first = compute_sqlite(conn), compute_sqlite(conn, "2026-01-01T00:00:00Z")
    assert since_first.pop("since") == "2026-01-01T00:00:00.000Z" and everything.pop("since") is None
    assert everything == since_first
    later = compute_sqlite(conn, "2026-01-01T00:02:30Z")  # the rows of minutes 2 to 4 only
    assert later["overall"]["count"] == 3_000 - 1_200 - 300


def test_with_since_the_statements_take_it_as_their_one_parameter_and_without_none():
    for _, sql in queries(with_since=True):
        assert "?1" in sql
    for _, sql in queries(with_since=False):
        assert "?" not in sql and "created_at >=" not in sql
