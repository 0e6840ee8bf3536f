"""Time the metrics report (service.metrics.compute: P50/P95/P99 in SQL, overall and per image tag) over
1,000,000 job_metrics rows in a local SQLite file built from the real migrations; and, apart, the report with
the per-workflow-version group it runs only when asked (`?by=workflow_version`).

    .venv/bin/python bench/metrics_query.py [--rows 1000000] [--tags 4] [--days 23] [--versions 2] [--repeat 3]

The rows are spread evenly over `--days` days and the `--tags` worker image tags are releases one
after another, as in production (a year of daily releases: `--tags 365 --days 365`). The `--versions`
workflow versions ship one after another too, each next to those before it (a job picks one of the
versions shipped by then at random): `sdxl-txt2img@1.0.0`, then `sdxl-txt2img-v2@2.0.0` from the
second of `--versions` equal spans of the rows, and so on. They are drawn from their own random
sequence, so every other column is the same whatever `--versions` is.

Prints one JSON object with the fastest and median wall time of the whole default report, with and
without a `since` filter (the last half of the days; target: under 1 s), the size of its JSON
answer, and the longest the event loop stalled while one report ran (its scans run on worker
threads, so webhooks keep being answered meanwhile); then the same for the report with the versions'
group (`with_workflow_versions`). Each repeat runs the default report, then the one with versions, so a
machine whose load changes meanwhile weighs on both alike. The exit status is the default report's
(0 when its best is under the target).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.metrics import compute
from service.migrate import apply_sqlite
from service.sqlite_database import SqliteDatabase

START = datetime(2026, 1, 1, tzinfo=UTC)


def version_name(version: int) -> str:
    return "sdxl-txt2img@1.0.0" if version == 0 else f"sdxl-txt2img-v{version + 1}@{version + 1}.0.0"


def fill(path: Path, rows: int, tags: int, days: float, versions: int = 2) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    apply_sqlite(conn, ROOT / "migrations")
    rng, version_rng = random.Random(42), random.Random(43)
    statuses = ["completed"] * 17 + ["failed", "timed_out", "cancelled"]
    step = timedelta(days=days) / rows
    names = [f"repo/worker@sha256:{hashlib.sha256(str(t).encode()).hexdigest()}" for t in range(tags)]

    def generate():
        for i in range(rows):
            queue = int(rng.expovariate(1 / 1500))
            run = int(rng.lognormvariate(8, 0.5))
            created = (START + i * step).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            yield (f"job{i:08d}", "bench", rng.choice(statuses), queue, run, queue + run + rng.randint(50, 400),
                   names[i * tags // rows], version_name(version_rng.randrange(i * versions // rows + 1)),
                   "NVIDIA GeForce RTX 4090",
                   0.00031 * -(-run // 1000), created)

    conn.execute("BEGIN")
    conn.executemany("INSERT INTO job_metrics (job_id, stack, status, runpod_queue_duration_ms, runpod_run_duration_ms,"
                     " e2e_ms, worker_image_tag, workflow_version, gpu_type, cost_estimate_usd, created_at) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?,?)", generate())
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def timed(db: SqliteDatabase, since: str | None, repeat: int) -> tuple[dict[bool, list[float]], dict[bool, dict]]:
    """The wall times and last report of the default report (key False) and the one with versions (True),
    run in turn."""
    times: dict[bool, list[float]] = {False: [], True: []}
    reports: dict[bool, dict] = {}
    for _ in range(repeat):
        for by_version in (False, True):
            started = time.perf_counter()
            reports[by_version] = asyncio.run(compute(db, since, by_workflow_version=by_version))
            times[by_version].append(time.perf_counter() - started)
    return times, reports


def seconds(times: list[float]) -> dict[str, float]:
    return {"best_s": round(min(times), 3), "median_s": round(statistics.median(times), 3)}


async def _longest_stall(db: SqliteDatabase, by_workflow_version: bool) -> float:
    """The longest the event loop went without running a 1 ms timer while one report ran: what a
    webhook arriving meanwhile would wait, at worst."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    await compute(db, None, by_workflow_version=by_workflow_version)
    done.set()
    await task
    return max(gaps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tags", type=int, default=4)
    parser.add_argument("--days", type=float, default=23.0)
    parser.add_argument("--versions", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    # A million rows take about 700 MB: the file goes when the run ends.
    with tempfile.TemporaryDirectory(prefix="gg-metrics-") as tmp:
        path = Path(tmp) / "metrics.sqlite"
        started = time.perf_counter()
        fill(path, args.rows, args.tags, args.days, args.versions)
        fill_s = time.perf_counter() - started
        db = SqliteDatabase(path)
        all_times, reports = timed(db, None, args.repeat)
        since = (START + timedelta(days=args.days / 2)).isoformat()  # the last half of the rows
        since_times, since_reports = timed(db, since, args.repeat)
        stalls = {by_version: asyncio.run(_longest_stall(db, by_version)) for by_version in (False, True)}
        db.close()

    def figures(by_version: bool) -> dict:
        return {"all_rows": seconds(all_times[by_version]),
                "since_filter": {"since": since, "rows": since_reports[by_version]["overall"]["count"],
                                 **seconds(since_times[by_version])},
                "answer_bytes": len(json.dumps(reports[by_version])),
                "longest_event_loop_stall_ms": round(stalls[by_version] * 1000, 1)}

    report, with_versions = reports[False], reports[True]
    result = {
        "rows": args.rows, "tags": args.tags, "days": args.days, "versions": args.versions, "repeat": args.repeat,
        "fill_seconds": round(fill_s, 2),
        **figures(False),
        "overall": {k: report["overall"][k] for k in ("count", "error_rate", "e2e_ms", "queue_ms", "run_ms")},
        "with_workflow_versions": {
            **figures(True),
            "by_workflow_version": {g["workflow_version"]: g["count"] for g in with_versions["by_workflow_version"]},
        },
        "target_s": 1.0,
    }
    print(json.dumps(result, indent=2))
    return 0 if min(all_times[False]) < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
