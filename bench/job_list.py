"""Time GET /api/jobs' one read (service.joblist.page_statement) over 1,000,000 jobs of 100 clients in a local SQLite
file built from the real migrations, for each filter combination the route allows.

    .venv/bin/python bench/job_list.py [--rows 1000000] [--clients 100] [--big-share 0.3] [--samples 200] [--limit 50]

The jobs are spread over 30 days, newest last; one client ("client-000") holds `--big-share` of them (the hard
case: a client with hundreds of thousands of old jobs), the rest are spread over the other clients and the API token.
Nearly all are completed; one in 100 failed, and the last hour's are queued or in_progress. A page's work is counted
as SQLite's VM steps (a progress handler called on every step: SQLITE_STMTSTATUS_VM_STEP is not exposed to Python),
a stand-in for the rows D1 bills; its wall time is taken apart, without the handler.

For each combination (whose jobs: every job, one client's as the operator asks, the big client's own; `status`:
none, failed, queued+in_progress; `created_after`: none or the last day; page: the first, or one deep in the walk,
within `created_after` when it is set)
prints p50/p99 of the read in ms, the VM steps (max), the jobs a page held (mean) and the query plan; then how many
pages a status filter takes to walk the big client's whole history (the bound of a sparse filter, documented in
docs/INTERFACES.md). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service import jobs
from service.joblist import Listing, page_statement
from service.migrate import apply_sqlite

END = 1_800_000_000.0  # the newest job
DAYS = 30


def fill(path: Path, rows: int, clients: int, big_share: float) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    apply_sqlite(conn, ROOT / "migrations")
    rng = random.Random(42)
    step = DAYS * 86400 / rows
    names = [f"client-{c:03d}" for c in range(clients)]

    def generate():
        for i in range(rows):
            created = END - (rows - 1 - i) * step
            client = names[0] if rng.random() < big_share else rng.choice([*names[1:], None])
            if END - created < 3600:
                status = rng.choice(("queued", "in_progress", "completed"))
            else:
                status = "failed" if rng.random() < 0.01 else "completed"
            at = jobs.iso_ms(created)
            yield (f"{rng.getrandbits(128):032x}", "bench", "sdxl-txt2img", "sdxl-txt2img@1.0.0",
                   '{"prompt":"a lighthouse at dusk, oil on canvas","seed":42}', f"{rng.getrandbits(128):032x}",
                   status, at, int(created * 1000), at, None if status in ("queued",) else at, client,
                   None if status == "queued" else f"rp-{i}")

    conn.execute("BEGIN")
    conn.executemany("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                     "created_at, created_at_ms, updated_at, finished_at, client, runpod_job_id) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", generate())
    conn.execute("COMMIT")
    conn.close()


def steps_of(conn: sqlite3.Connection, sql: str, params: tuple) -> tuple[int, list[tuple]]:
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    conn.set_progress_handler(tick, 1)
    try:
        rows = conn.execute(sql, params).fetchall()
    finally:
        conn.set_progress_handler(None, 1)
    return count[0], rows


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def deep_cursor(conn: sqlite3.Connection, client: str | None, rng: random.Random, since: str = "") -> tuple[str, str]:
    """The (created_at, id) of a random job of the listing's created at or after `since`, as a cursor deep in its
    walk names."""
    where = "WHERE created_at >= ?" + (" AND client = ?" if client else "")
    params: tuple = (since, client) if client else (since,)
    (count,) = conn.execute(f"SELECT COUNT(*) FROM jobs {where}", params).fetchone()
    offset = rng.randrange(count // 10, count)
    row = conn.execute(f"SELECT created_at, id FROM jobs {where} ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?",
                       (*params, offset)).fetchone()
    return row[0], row[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--big-share", type=float, default=0.3)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jobs.sqlite"
        started = time.perf_counter()
        fill(path, args.rows, args.clients, args.big_share)
        filled_s = time.perf_counter() - started
        conn = sqlite3.connect(path, isolation_level=None)
        rng = random.Random(7)
        last_day = jobs.iso_ms(END - 86400)
        small = [f"client-{c:03d}" for c in range(1, args.clients)]
        cursors = {(who, since): [deep_cursor(conn, rng.choice(small) if who == "small" else who, rng, since or "")
                                  for _ in range(20)]
                   for who in (None, "client-000", "small") for since in (None, last_day)}
        results = []
        for scope, status, after, deep in itertools.product(("every job", "one small client", "the big client"),
                                                            (None, "failed", "queued,in_progress"),
                                                            (None, last_day), (False, True)):
            times, steps, held = [], [], []
            plan = None
            for _ in range(args.samples):
                client = None if scope == "every job" else "client-000" if scope == "the big client" else \
                    rng.choice(small)
                before = None
                if deep:
                    before = rng.choice(cursors["small" if scope == "one small client" else client, after])
                statuses = frozenset(status.split(",")) if status else None
                listing = Listing(client, statuses, after, args.limit, before)
                sql, params = page_statement(listing)
                plan = plan or " | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
                t0 = time.perf_counter()
                rows = conn.execute(sql, params).fetchall()
                times.append((time.perf_counter() - t0) * 1000)
                counted, _ = steps_of(conn, sql, params)
                steps.append(counted)
                read = rows[:args.limit]
                held.append(sum(1 for r in read if statuses is None or r[1] in statuses))
            results.append({"scope": scope, "status": status, "created_after": "last day" if after else None,
                            "page": "deep" if deep else "first", "p50_ms": round(percentile(times, 50), 3),
                            "p99_ms": round(percentile(times, 99), 3), "vm_steps_max": max(steps),
                            "jobs_per_page_mean": round(statistics.mean(held), 1), "plan": plan})
        (big,) = conn.execute("SELECT COUNT(*) FROM jobs WHERE client = 'client-000'").fetchone()
        walk = {"big_client_jobs": big, "pages_to_walk_all_at_limit_200": -(-big // 200),
                "pages_at_limit_200_with_created_after_last_day": -(-conn.execute(
                    "SELECT COUNT(*) FROM jobs WHERE client = 'client-000' AND created_at >= ?",
                    (last_day,)).fetchone()[0] // 200)}
        print(json.dumps({"rows": args.rows, "clients": args.clients, "limit": args.limit, "samples": args.samples,
                          "fill_s": round(filled_s, 1), "sqlite": sqlite3.sqlite_version,
                          "combinations": results, "status_walk": walk}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
