"""bench/dr_drill.py --database: drill an existing stack database (a million jobs take half a minute to
build) without changing it, and report the whole drill, its CPU seconds and the peak RSS besides the backup
and RTO."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, str(ROOT / "bench" / "dr_drill.py"), *argv], cwd=ROOT,
                          env={**os.environ, "TMPDIR": str(scratch)}, capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_bench_drills_a_given_database_and_leaves_it_as_it_was(tmp_path, stack_db):
    db = stack_db(tmp_path / "stack" / "db.sqlite", jobs=700)
    before = db.read_bytes()
    done = _bench(tmp_path, "--database", str(db), "--repeat", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["passed"] is True and report["database"] == str(db) and report["fill_seconds"] is None
    assert report["jobs"] == report["row_counts"]["jobs"] == 700
    for figure in ("backup", "restore_verify_rto", "drill", "cpu"):
        assert 0 < report[figure]["best_s"] <= report[figure]["median_s"], figure
    assert report["drill"]["best_s"] >= report["backup"]["best_s"]
    rss = report["peak_rss_mb"]
    assert 0 < rss["before_drills"] <= rss["after_drills"]
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["db.sqlite"]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_missing_database_is_a_one_line_usage_error(tmp_path):
    done = _bench(tmp_path, "--database", str(tmp_path / "nowhere.sqlite"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1].endswith(f"--database {tmp_path / 'nowhere.sqlite'}: no such file")
