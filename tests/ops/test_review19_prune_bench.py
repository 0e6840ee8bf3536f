"""bench/prune.py, run small: it prunes a year-old database as `goldgate prune` does (and, with --before, a
copy as the prune did before), prints one JSON object and leaves nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "prune.py"), *argv], cwd=ROOT,
                          env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_prune_bench_deletes_every_due_row_both_ways_and_removes_its_files(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--jobs", "700", "--before")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    for run in ("before", "now"):
        tables = report[run]["tables"]
        assert {table: tables[table]["deleted"] for table in tables} == {
            "jobs": 700, "webhook_deliveries": 700, "idempotency_keys": 0, "job_metrics": 700}, run
        assert report[run]["remaining"] == dict.fromkeys(tables, 0), run
        assert tables["idempotency_keys"]["rows_per_s"] is None and tables["jobs"]["rows_per_s"] > 0
    assert report["ids"] == "service" and report["metrics_batch"] == 5_000
    assert list(tmp_path.iterdir()) == []


def test_the_prune_bench_keeps_the_metrics_without_a_metrics_keep_period(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--jobs", "300", "--metrics-keep-days", "0", "--fixture-ids")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert "before" not in report and report["metrics_keep_days"] is None
    now = report["now"]
    assert now["tables"]["job_metrics"]["deleted"] == 0 and now["remaining"]["job_metrics"] == 300
    assert now["tables"]["jobs"]["deleted"] == 300


def test_the_prune_bench_refuses_no_jobs(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--jobs", "0")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1].endswith("--jobs: takes a whole number of at least 1")
