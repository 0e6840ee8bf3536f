"""Time the local D1 disaster-recovery drill (goldgate.ops.dr.run_local_drill: online backup, restore into a
scratch file, verify) on a stack database holding 100,000 jobs, as many job_metrics rows and webhook deliveries.

    .venv/bin/python bench/dr_drill.py [--jobs 100000] [--repeat 3] [--database FILE] [--cloud]

The database is built from the real migrations by the operations tests' fixture (tests/ops/ops_fixtures.py),
in a temporary directory that goes when the run ends; `--database` drills an existing stack database instead
(read only: a million jobs take half a minute to build, so build one and drill it several times). Prints one
JSON object: the database's size, and for the backup, the restore + verify (RTO), the whole drill, the CPU
seconds it used (on a shared machine, steadier than the wall clock) and the RPO the fastest and median seconds
over `--repeat` drills, and the process's peak RSS before and after the drills (a drill that read a table into
memory would show here). Exits 1 when a drill fails or the slowest RTO misses the 30-minute target of
docs/D1_DISASTER_RECOVERY.md.

`--cloud` times the cloud drill (run_cloud_drill) instead, against the D1 stand-in and moto's S3 as R2, both in a
process of their own (their memory is not the drill's): the database goes into a D1 by an import, then each drill
exports it, loads the export into SQLite to fingerprint it and stores it in R2 (backup), reads it back, imports it
into a scratch D1 and fingerprints that through /query (restore + verify). The CPU figure is the drill process's
alone; the stand-in's import runs in the other process, and shows in the wall-clock figures. Its fill_seconds
include the first import.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "ops")]

from ops_fixtures import STANDINS, build_stack_db

from goldgate.ops.dr import DrillResult, run_cloud_drill, run_local_drill

TARGET_RTO_S = 30 * 60
TOKEN = "bench-drill-token-0123456789abcdef"


def summary(figures: list[float]) -> dict[str, float]:
    return {"best_s": round(min(figures), 3), "median_s": round(statistics.median(figures), 3)}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def local_drills(db: Path) -> Iterator[Callable[[Path], DrillResult]]:
    # keep_backup=False: each drill's backup is as large as the database, and only its timings matter here
    yield lambda home: run_local_drill("staging", db, home, keep_backup=False)


@contextmanager
def cloud_drills(db: Path, tmp: Path) -> Iterator[Callable[[Path], DrillResult]]:
    """A drill of `db` as a D1 database, served with R2 by a process of their own."""
    import boto3

    from goldgate.cloudflare.api import CloudflareApi
    from goldgate.cloudflare.d1 import D1Client
    from goldgate.cloudflare.r2 import R2Admin

    child = subprocess.Popen([sys.executable, "-c", STANDINS, TOKEN, "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        where = json.loads(child.stdout.readline())
        with CloudflareApi(TOKEN, where["api_base"], timeout_s=3600.0) as api:
            d1 = D1Client(api, where["account_id"], poll_interval_s=0.2)
            source = d1.create_database("goldgate-staging").uuid
            dump = tmp / "source.sql"
            conn = sqlite3.connect(db)
            with dump.open("w", encoding="utf-8", newline="\n") as out:
                out.write("PRAGMA defer_foreign_keys=TRUE;\n")
                out.writelines(f"{line}\n" for line in conn.iterdump() if line not in ("BEGIN TRANSACTION;", "COMMIT;"))
            conn.close()
            d1.import_sql(source, dump)
            dump.unlink()
            boto3.client("s3", endpoint_url=where["s3"], region_name="us-east-1", aws_access_key_id="k",
                         aws_secret_access_key="s").create_bucket(Bucket="goldgate-bench")
            r2 = R2Admin(where["s3"], "goldgate-bench", "k", "s")
            yield lambda home: run_cloud_drill("staging", d1, source, r2, home)
    finally:
        child.stdin.close()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])  # the first paragraph, whole
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", type=Path,
                        help="drill this stack database (read only) instead of building one")
    parser.add_argument("--cloud", action="store_true",
                        help="time the cloud drill against the D1 and R2 stand-ins instead of the local one")
    args = parser.parse_args()
    if args.jobs < 1 or args.repeat < 1:
        parser.error("--jobs and --repeat take a whole number of at least 1")
    if args.database is not None and not args.database.is_file():
        parser.error(f"--database {args.database}: no such file")
    drills: list[DrillResult] = []
    totals: list[float] = []
    cpus: list[float] = []
    with tempfile.TemporaryDirectory(prefix="gg-dr-drill-") as tmp:
        home = Path(tmp) / "home"
        started = time.perf_counter()
        db = args.database or build_stack_db(Path(tmp) / "staging.sqlite", jobs=args.jobs)
        with cloud_drills(db, Path(tmp)) if args.cloud else local_drills(db) as run_drill:
            fill_s = time.perf_counter() - started
            rss_before = peak_rss_mb()
            for _ in range(args.repeat):
                began, cpu_began = time.perf_counter(), cpu_s()
                drill = run_drill(home)
                totals.append(time.perf_counter() - began)
                cpus.append(cpu_s() - cpu_began)
                drills.append(drill)
                if not drill.passed:
                    break
        db_bytes = db.stat().st_size
    failed = next((d for d in drills if not d.passed), None)
    result = {
        "target": "cloud" if args.cloud else "local",
        "jobs": drills[0].row_counts.get("jobs", args.jobs) if drills else args.jobs,
        "database": str(args.database) if args.database else None, "database_mb": round(db_bytes / 1e6, 1),
        "fill_seconds": None if args.database else round(fill_s, 2),
        "drills": len(drills), "passed": failed is None, "error": failed.error if failed else None,
        "peak_rss_mb": {"before_drills": rss_before, "after_drills": peak_rss_mb()},
    }
    if failed is None:
        result.update(
            row_counts=drills[0].row_counts, backup_mb=round((drills[0].backup_bytes or 0) / 1e6, 1),
            backup=summary([d.backup_s or 0.0 for d in drills]),
            restore_verify_rto=summary([d.rto_s or 0.0 for d in drills]),
            drill=summary(totals), cpu=summary(cpus),
            rpo=summary([d.rpo_s or 0.0 for d in drills]), target_rto_s=TARGET_RTO_S,
        )
    print(json.dumps(result, indent=2))
    return 0 if failed is None and max(d.rto_s or 0.0 for d in drills) < TARGET_RTO_S else 1


if __name__ == "__main__":
    sys.exit(main())
