"""Time the local D1 disaster-recovery drill (goldgate.ops.dr.run_local_drill: online backup, restore into a
scratch file, verify) on a stack database holding 100,000 jobs, as many job_metrics rows and webhook deliveries.

    .venv/bin/python bench/dr_drill.py [--jobs 100000] [--repeat 3]

The database is built from the real migrations by the operations tests' fixture (tests/ops/ops_fixtures.py),
in a temporary directory that goes when the run ends. Prints one JSON object: the database's size, and for the
backup, the restore + verify (RTO) and the RPO the fastest and median seconds over `--repeat` drills. Exits 1
when a drill fails or the slowest RTO misses the 30-minute target of docs/D1_DISASTER_RECOVERY.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "ops")]

from ops_fixtures import build_stack_db

from goldgate.ops.dr import DrillResult, run_local_drill

TARGET_RTO_S = 30 * 60


def summary(figures: list[float]) -> dict[str, float]:
    return {"best_s": round(min(figures), 3), "median_s": round(statistics.median(figures), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.jobs < 1 or args.repeat < 1:
        parser.error("--jobs and --repeat take a whole number of at least 1")
    drills: list[DrillResult] = []
    with tempfile.TemporaryDirectory(prefix="gg-dr-drill-") as tmp:
        home = Path(tmp) / "home"
        started = time.perf_counter()
        db = build_stack_db(Path(tmp) / "staging.sqlite", jobs=args.jobs)
        fill_s = time.perf_counter() - started
        for _ in range(args.repeat):
            # keep_backup=False: each drill's backup is as large as the database, and only its timings matter here
            drill = run_local_drill("staging", db, home, keep_backup=False)
            drills.append(drill)
            if not drill.passed:
                break
        db_bytes = db.stat().st_size
    failed = next((d for d in drills if not d.passed), None)
    result = {
        "jobs": args.jobs, "database_mb": round(db_bytes / 1e6, 1), "fill_seconds": round(fill_s, 2),
        "drills": len(drills), "passed": failed is None, "error": failed.error if failed else None,
    }
    if failed is None:
        result.update(
            row_counts=drills[0].row_counts, backup_mb=round((drills[0].backup_bytes or 0) / 1e6, 1),
            backup=summary([d.backup_s or 0.0 for d in drills]),
            restore_verify_rto=summary([d.rto_s or 0.0 for d in drills]),
            rpo=summary([d.rpo_s or 0.0 for d in drills]), target_rto_s=TARGET_RTO_S,
        )
    print(json.dumps(result, indent=2))
    return 0 if failed is None and max(d.rto_s or 0.0 for d in drills) < TARGET_RTO_S else 1


if __name__ == "__main__":
    sys.exit(main())
