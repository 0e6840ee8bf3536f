"""GET /api/metrics over a year of daily releases: the report does about the work it does for a few
releases over the same rows (its percentiles were a sort and a window over every distinct (release,
duration), about 9 s over 1,000,000 rows), and its percentiles stay exact nearest-rank values.

Work is counted in SQLite VM instructions (a progress handler), which do not depend on the machine's
speed or load; bench/metrics_query.py measures the time."""

from __future__ import annotations

import hashlib
import math
import random
import sqlite3

from service_testkit import MIGRATIONS

from service.metrics import DURATIONS, compute_sqlite, queries
from service.migrate import apply_sqlite


def digest_tag(release: int) -> str:
    return f"registry.example/acme/worker@sha256:{hashlib.sha256(str(release).encode()).hexdigest()}"


def database(rows: list[tuple]) -> sqlite3.Connection:
    """rows: (tag, e2e, queue, run, created_at)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_sqlite(conn, MIGRATIONS)
    conn.executemany("INSERT INTO job_metrics (job_id, stack, status, e2e_ms, runpod_queue_duration_ms, "
                     "runpod_run_duration_ms, worker_image_tag, created_at) VALUES (?, 's', 'completed', ?, ?, ?, ?, ?)",
                     [(f"j{i}", e2e, queue, run, tag, created) for i, (tag, e2e, queue, run, created) in enumerate(rows)])
    conn.execute("ANALYZE")
    return conn


def releases(count: int, rows: int) -> sqlite3.Connection:
    """`rows` jobs run one release after another, durations of 0 to 1000 ms (each value recurs often)."""
    rng = random.Random(5)
    tags = [digest_tag(release) for release in range(count)]
    return database([(tags[i * count // rows], rng.randint(0, 1000), rng.randint(0, 1000), rng.randint(0, 1000),
                      f"2026-01-01T00:00:{i % 60:02d}.000Z") for i in range(rows)])


def vm_instructions(conn: sqlite3.Connection) -> int:
    """The SQLite VM instructions the report's queries take, in hundreds."""
    ticks = [0]

    def tick() -> int:
        ticks[0] += 1
        return 0

    conn.set_progress_handler(tick, 100)
    for _, sql in queries(with_since=False):
        conn.execute(sql).fetchall()
    conn.set_progress_handler(None, 0)
    return ticks[0]


def test_twenty_releases_cost_the_report_about_the_work_of_two_over_the_same_rows():
    few, many = vm_instructions(releases(2, 20_000)), vm_instructions(releases(20, 20_000))
    assert many < 2 * few, (few, many)  # it was 3.4 times: the per-release window ran over each distinct value


def nearest_rank(values: list[int], p: int) -> int | None:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered) / 100) - 1] if ordered else None


def test_percentiles_stay_exact_over_many_releases_with_wide_ranges_ties_nulls_and_since():
    rng = random.Random(11)
    tags = [digest_tag(release) for release in range(60)] + [None]

    def duration() -> int | None:
        return rng.choice([None, rng.randint(0, 3), int(rng.lognormvariate(8, 1)), rng.randint(-10**6, 10**6),
                           10**12 - rng.randint(0, 2), -(10**12)])  # from no value to whole lifetimes, ties

    rows = [(rng.choice(tags[:3]) if rng.random() < 0.3 else rng.choice(tags), duration(), duration(), duration(),
             f"2026-01-{1 + rng.randint(0, 29):02d}T00:00:00.000Z") for _ in range(4000)]
    rows.append((digest_tag(999), 7, None, 7, "2026-01-31T00:00:00.000Z"))  # a release with one job
    conn = database(rows)
    for since in (None, "2026-01-15", "2026-01-31", "2026-02-01"):
        report = compute_sqlite(conn, since)
        kept = [r for r in rows if since is None or r[4] >= f"{since}T00:00:00.000Z"]
        groups = {g["worker_image_tag"]: g for g in report["by_worker_image_tag"]}
        assert set(groups) == {r[0] for r in kept}
        checked = [("overall", kept, report["overall"])]
        checked += [(tag, [r for r in kept if r[0] == tag], group) for tag, group in groups.items()]
        for name, at in zip(DURATIONS, (1, 2, 3), strict=True):  # e2e, queue, run: as in the rows
            for label, group_rows, group in checked:
                values = [r[at] for r in group_rows if r[at] is not None]
                assert group[name] == {f"p{p}": nearest_rank(values, p) for p in (50, 95, 99)}, (since, name, label)


def test_a_hand_written_infinite_duration_counts_as_no_value_instead_of_halving_forever(tmp_path):
    # The service writes whole milliseconds; a row written by hand may hold 1e999 (inf). Halving [lo, inf) never
    # narrows, so the search would run until D1 killed it (and locally hold a reader thread for good).
    conn = database([(digest_tag(1), 5, 5, 5, "2026-01-01T00:00:00.000Z"),
                     (digest_tag(1), float("inf"), 6, 6, "2026-01-01T00:00:01.000Z"),
                     (digest_tag(2), 7, 7, 7, "2026-01-01T00:00:02.000Z")])
    ticks = [0]

    def tick() -> int:
        ticks[0] += 1
        return 1 if ticks[0] > 100_000 else 0  # 10,000,000 instructions: far past any search over three rows

    conn.set_progress_handler(tick, 100)
    for _, sql in queries(with_since=False):
        conn.execute(sql).fetchall()  # an interrupted query raises here
    conn.set_progress_handler(None, 0)
    conn.execute(f"VACUUM INTO '{tmp_path / 'copy.sqlite'}'")
    report = compute_sqlite(tmp_path / "copy.sqlite")
    assert report["overall"]["e2e_ms"] == {"p50": 5, "p95": 7, "p99": 7}  # over 5 and 7, as if inf were NULL
    assert [t["e2e_ms"]["p99"] for t in report["by_worker_image_tag"]] == [5, 7]
    assert report["overall"]["count"] == 3  # the job still counts; only its duration does not
