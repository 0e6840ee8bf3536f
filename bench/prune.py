"""Time the first prune of a long-lived stack's database: every job, delivery and metrics row due at once.

    .venv/bin/python bench/prune.py [--jobs 200000] [--keep-days 30] [--metrics-keep-days 30] [--before]
        [--fixture-ids]

The database is built from the real migrations by tests/ops/ops_fixtures.py (`build_stack_db`: one job a
second, a year ago, each with its delivery and metrics row, two worker image tags), with ids as the service
makes them (random hex; --fixture-ids keeps the fixture's ordered ones), in WAL mode as the stack's service
leaves it, then pruned as `goldgate prune` prunes it (service.retention over goldgate.ops.retention's
connection). --before also prunes a copy of the same database the way the prune did before session 19
(metrics deleted 1,000 rows a statement, over SQLite's default 2 MB page cache), for a ratio measured on the
same machine in the same run.

Prints one JSON object: per run the total seconds and, per table, the rows deleted, the seconds its DELETE
statements took and rows a second (the other statements, window bounds and counts, are `other_s`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "ops")]

from ops_fixtures import build_stack_db

from goldgate.ops.retention import _SqliteSql, open_stack_db
from service import retention

BEFORE_METRICS_BATCH = 1_000
BEFORE_CACHE_KIB = 2_000  # SQLite's default cache_size (-2000)


class TimedSql(_SqliteSql):
    """Adds each statement's time to the table it deletes from."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self.seconds: dict[str, float] = dict.fromkeys((*retention.TABLES, "other"), 0.0)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        started = time.perf_counter()
        try:
            return await super().query(sql, params)
        finally:
            table = next((t for t in retention.TABLES if sql.startswith(f"DELETE FROM {t} ")), "other")
            self.seconds[table] += time.perf_counter() - started


def _hex(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def build(path: Path, jobs: int, now: datetime, fixture_ids: bool) -> None:
    build_stack_db(path, jobs=jobs, start=(now - timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")  # as service.sqlite_database leaves a stack's database
    if not fixture_ids:
        # Ids as the service makes them (uuid4 hex, sha256 fingerprints): each id index is written at random
        # places, as in a real database, not in the fixture's order.
        conn.create_function("hexid", 2, _hex, deterministic=True)
        conn.execute("BEGIN")
        conn.execute("UPDATE jobs SET id = hexid(id, 32), runpod_job_id = hexid(runpod_job_id, 32) || '-u1'")
        conn.execute("UPDATE webhook_deliveries SET job_id = hexid(job_id, 32), "
                     "fingerprint = hexid(fingerprint, 64)")
        conn.execute("UPDATE job_metrics SET job_id = hexid(job_id, 32)")
        conn.execute("COMMIT")
    conn.execute("UPDATE job_metrics SET images = CASE WHEN status = 'completed' THEN 1 ELSE 0 END")
    conn.execute("ANALYZE")
    conn.close()


def run_prune(path: Path, now: datetime, keep_days: int, metrics_keep_days: int | None,
              before: bool) -> dict[str, Any]:
    conn = open_stack_db(path)
    saved = retention.METRICS_BATCH
    if before:
        conn.execute(f"PRAGMA cache_size = -{BEFORE_CACHE_KIB}")
        retention.METRICS_BATCH = BEFORE_METRICS_BATCH
    db = TimedSql(conn)
    try:
        cutoffs = retention.Cutoffs.at(now.timestamp(), keep_days, metrics_keep_days)
        started = time.perf_counter()
        pruned = asyncio.run(retention.prune(db, cutoffs))
        total = time.perf_counter() - started
    finally:
        retention.METRICS_BATCH = saved
        conn.close()
    tables = {}
    for table in retention.TABLES:
        gone, seconds = pruned.deleted[table], db.seconds[table]
        tables[table] = {"deleted": gone, "seconds": round(seconds, 2),
                         "rows_per_s": round(gone / seconds) if gone else None}
    return {"total_s": round(total, 2), "tables": tables, "other_s": round(db.seconds["other"], 2),
            "remaining": pruned.remaining}


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("takes a whole number of at least 1")
    return int(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])  # the first paragraph, whole
    parser.add_argument("--jobs", type=_jobs, default=200_000)
    parser.add_argument("--keep-days", type=int, default=30)
    parser.add_argument("--metrics-keep-days", type=int, default=30, help="0: keep the metrics (no deletion)")
    parser.add_argument("--fixture-ids", action="store_true",
                        help="keep the fixture's ids, in created order (the id indexes then fill in order)")
    parser.add_argument("--before", action="store_true",
                        help="also prune a copy as before session 19 (1,000 metrics rows a statement, "
                             "2 MB cache)")
    args = parser.parse_args()
    now = datetime.now(UTC)
    metrics_keep_days = args.metrics_keep_days or None
    result: dict[str, Any] = {"jobs": args.jobs, "keep_days": args.keep_days}
    result.update(metrics_keep_days=metrics_keep_days, metrics_batch=retention.METRICS_BATCH,
                  ids="fixture" if args.fixture_ids else "service")
    # 200,000 jobs take about 350 MB, twice with --before: the files go when the run ends.
    with tempfile.TemporaryDirectory(prefix="gg-prune-") as tmp:
        path = Path(tmp) / "db.sqlite"
        started = time.perf_counter()
        build(path, args.jobs, now, args.fixture_ids)
        result["build_s"] = round(time.perf_counter() - started, 1)
        result["db_mb"] = round(path.stat().st_size / (1 << 20))
        if args.before:
            copy = Path(tmp) / "before.sqlite"
            shutil.copyfile(path, copy)
            result["before"] = run_prune(copy, now, args.keep_days, metrics_keep_days, before=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
        result["now"] = run_prune(path, now, args.keep_days, metrics_keep_days, before=False)
    if args.before:
        if result["now"]["total_s"]:
            result["ratio_total"] = round(result["before"]["total_s"] / result["now"]["total_s"], 2)
        before_m, now_m = result["before"]["tables"]["job_metrics"], result["now"]["tables"]["job_metrics"]
        if before_m["seconds"] and now_m["seconds"]:
            result["ratio_job_metrics"] = round(before_m["seconds"] / now_m["seconds"], 2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
