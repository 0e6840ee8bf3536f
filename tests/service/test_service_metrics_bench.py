"""bench/metrics_query.py leaves nothing behind: its database of a million rows is about 700 MB."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from service_testkit import ROOT


def test_the_metrics_bench_removes_its_database_when_it_ends(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "metrics_query.py"), "--rows", "2000", "--repeat", "1"],
                          cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True, text=True,
                          timeout=300, check=False)
    assert json.loads(proc.stdout)["overall"]["count"] == 2000, proc.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []
