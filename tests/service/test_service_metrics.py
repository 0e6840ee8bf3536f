"""Percentiles computed in SQL equal a plain Python nearest-rank computation on the same rows."""

from __future__ import annotations

import asyncio
import math
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from service_testkit import MIGRATIONS, migrated_memory_db

from service.metrics import compute, compute_sqlite, normalize_since
from service.migrate import apply_sqlite
from service.sqlite_database import SqliteDatabase

TAGS = ["img@sha256:aa", "img@sha256:bb", None]
RELEASES = [f"img@sha256:{release:02x}" for release in range(40)]  # a release a day: most ran few jobs


def nearest_rank(values: list[int], p: int) -> int | None:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered) / 100) - 1] if ordered else None


rows_strategy = st.lists(st.tuples(
    st.one_of(st.sampled_from(TAGS), st.sampled_from(RELEASES)),
    st.sampled_from(["completed", "failed", "timed_out", "cancelled"]),
    st.one_of(st.none(), st.integers(0, 10**7), st.integers(0, 3)),  # few values: ties
    st.one_of(st.none(), st.integers(-(10**6), 10**6)),
    st.integers(-(10**12), 10**12),
    st.one_of(st.none(), st.floats(0, 5, allow_nan=False)),
    st.integers(0, 3),
), max_size=160)


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy, since_day=st.one_of(st.none(), st.integers(0, 3)))
def test_sql_percentiles_equal_python_nearest_rank(rows, since_day):
    conn = migrated_memory_db()
    for i, (tag, status, e2e, queue, run, usd, day) in enumerate(rows):
        conn.execute("INSERT INTO job_metrics (job_id, stack, status, runpod_queue_duration_ms, runpod_run_duration_ms,"
                     " e2e_ms, worker_image_tag, cost_estimate_usd, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                     (f"j{i}", "s", status, queue, run, e2e, tag, usd, f"2026-01-0{day + 1}T00:00:00.000Z"))
    since = None if since_day is None else f"2026-01-0{since_day + 1}T00:00:00Z"
    report = compute_sqlite(conn, since)
    kept = [r for r in rows if since_day is None or r[6] >= since_day]

    def expect(group_rows):
        return {
            "count": len(group_rows),
            "errors": sum(r[1] in ("failed", "timed_out") for r in group_rows),
            "e2e_ms": {f"p{p}": nearest_rank([r[2] for r in group_rows if r[2] is not None], p) for p in (50, 95, 99)},
            "queue_ms": {f"p{p}": nearest_rank([r[3] for r in group_rows if r[3] is not None], p)
                         for p in (50, 95, 99)},
            "run_ms": {f"p{p}": nearest_rank([r[4] for r in group_rows], p) for p in (50, 95, 99)},
        }

    def got(group):
        return {k: group[k] for k in ("count", "errors", "e2e_ms", "queue_ms", "run_ms")}

    assert got(report["overall"]) == expect(kept)
    costs = [r[5] for r in kept if r[5] is not None]
    if costs:
        assert math.isclose(report["overall"]["cost_total_usd"], sum(costs), rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(report["overall"]["cost_mean_usd"], sum(costs) / len(costs), rel_tol=1e-9,
                            abs_tol=1e-12)
    else:
        assert report["overall"]["cost_total_usd"] is None
    by_tag = {g["worker_image_tag"]: g for g in report["by_worker_image_tag"]}
    assert set(by_tag) == {r[0] for r in kept}
    for tag, group in by_tag.items():
        assert got(group) == expect([r for r in kept if r[0] == tag])


def test_compute_runs_on_the_database_port_and_compute_sqlite_on_a_file(tmp_path):
    path = tmp_path / "m.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    apply_sqlite(conn, MIGRATIONS)
    rows = [("completed", 10, 5, 100, 0.01, "img@sha256:aa"), ("completed", 20, 15, 200, 0.02, "img@sha256:aa"),
            ("failed", 30, 25, 300, None, "img@sha256:bb"), ("completed", 40, None, 400, 0.03, "img@sha256:bb")]
    for i, row in enumerate(rows):
        conn.execute("INSERT INTO job_metrics (job_id, stack, status, e2e_ms, runpod_queue_duration_ms, "
                     "runpod_run_duration_ms, cost_estimate_usd, worker_image_tag, created_at) "
                     "VALUES (?, 's', ?, ?, ?, ?, ?, ?, '2026-01-01T00:00:00.000Z')", (f"j{i}", *row))
    conn.close()
    db = SqliteDatabase(path)
    report = asyncio.run(compute(db, None))
    db.close()
    # Nearest rank of 4 values: p50 is the 2nd, p95 and p99 the 4th; of the 3 queue times, the 2nd and the 3rd.
    expected = {"count": 4, "completed": 3, "errors": 1, "error_rate": 0.25,
                "e2e_ms": {"p50": 20, "p95": 40, "p99": 40}, "queue_ms": {"p50": 15, "p95": 25, "p99": 25},
                "run_ms": {"p50": 200, "p95": 400, "p99": 400}}
    for overall in (report["overall"], compute_sqlite(path)["overall"]):
        assert {k: overall[k] for k in expected} == expected
        assert overall["cost_total_usd"] == pytest.approx(0.06)
        assert overall["cost_mean_usd"] == pytest.approx(0.02)
    assert [(g["worker_image_tag"], g["count"], g["errors"]) for g in compute_sqlite(path)["by_worker_image_tag"]] \
        == [("img@sha256:aa", 2, 0), ("img@sha256:bb", 2, 1)]
    assert report["percentile_method"] == "nearest-rank"


@pytest.mark.parametrize("directory", ["a#b", "a?b", "a%23b"])
def test_compute_sqlite_reads_the_named_file_whatever_its_path_holds(tmp_path, directory):
    # In a raw `file:` URI, `#` ends the path and `?` starts the query: SQLite would open another file.
    (tmp_path / directory).mkdir()
    path = tmp_path / directory / "m.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    apply_sqlite(conn, MIGRATIONS)
    conn.execute("INSERT INTO job_metrics (job_id, stack, status, e2e_ms, created_at) "
                 "VALUES ('j1', 's', 'completed', 1500, '2026-01-01T00:00:00.000Z')")
    conn.close()
    assert compute_sqlite(path)["overall"]["e2e_ms"] == {"p50": 1500, "p95": 1500, "p99": 1500}
    assert sorted(p.name for p in tmp_path.iterdir()) == [directory]  # no stray empty database beside it


def test_since_accepts_offsets_and_naive_times_as_utc():
    assert normalize_since("2026-01-01T02:00:00+02:00") == "2026-01-01T00:00:00.000Z"
    assert normalize_since("2026-01-01T00:00:00 02:00") == "2025-12-31T22:00:00.000Z"  # '+' lost in a query string
    assert normalize_since("2026-01-01") == "2026-01-01T00:00:00.000Z"
    assert normalize_since(None) is None
