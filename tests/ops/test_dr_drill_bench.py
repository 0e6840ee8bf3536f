"""bench/dr_drill.py, run small: it prints one JSON object with the drill's timings and leaves nothing behind (its
database of 100,000 jobs and each drill's backup are about 150 MB apiece)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "dr_drill.py"), *argv], cwd=ROOT,
                          env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True, text=True, timeout=300,
                          check=False)


def test_the_drill_bench_reports_each_timing_and_removes_its_files(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--jobs", "500", "--repeat", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["passed"] is True and report["drills"] == 2
    assert report["row_counts"]["jobs"] == report["row_counts"]["job_metrics"] == 500
    for figure in ("backup", "restore_verify_rto", "rpo"):
        assert 0 < report[figure]["best_s"] <= report[figure]["median_s"], figure
    assert list(tmp_path.iterdir()) == []


def test_the_drill_bench_refuses_zero_drills_in_one_line(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--repeat", "0")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1].endswith("--jobs and --repeat take a whole number of at least 1")
