"""bench/webhook_throughput.py --rounds, run small: every server is measured once per round in a rotated
order, each on its own unsettled jobs, and each ratio is the median of the per-round ratios, so a reader sees
the spread the machine's drift makes and the figure does not swing with one slow slot."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("baseline", "floor", "floor_grouped", "service")
RATIOS = {"ratio": ("service", "baseline"), "floor_ratio": ("floor", "baseline"),
          "floor_grouped_ratio": ("floor_grouped", "baseline"), "service_to_floor": ("service", "floor")}


def _bench(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "webhook_throughput.py"), *argv], cwd=ROOT,
                          env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_webhook_bench_reports_each_round_and_the_median_of_the_round_ratios(tmp_path: Path) -> None:
    # Half the jobs COMPLETED: the second round's service checks the same stored results for its fresh jobs.
    done = _bench(tmp_path, "--rounds", "2", "--jobs", "40", "--warmup-jobs", "10", "--procs", "1",
                  "--conns", "2", "--completed-every", "2")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)

    assert report["rounds"] == 2
    first, second = report["round_orders"]
    assert sorted(first) == sorted(second) == sorted(SERVERS)
    assert first[0] != second[0] and first[-1] != second[-1]  # rotated: no server always first or last
    for server in SERVERS:
        each = report[server]["webhooks_per_s_rounds"]
        assert len(each) == 2 and all(rate > 0 for rate in each), server
        assert report[server]["webhooks_per_s"] == min(each), server  # of two rounds, the lower middle one
        assert {"p50_ms", "p99_ms", "cpu_us_per_request", "errors"} <= set(report[server]), server
    assert report["baseline_runs_per_s"] == report["baseline"]["webhooks_per_s_rounds"]
    for key, (top, bottom) in RATIOS.items():
        per_round = report[f"{key}_rounds"]
        assert per_round == [round(t / b, 3) for t, b in zip(report[top]["webhooks_per_s_rounds"],
                                                               report[bottom]["webhooks_per_s_rounds"])], key
        assert report[key] == round(statistics.median(per_round), 3), key
    settled = report["jobs_settled_rounds"]  # --jobs and --warmup-jobs: every one settled in both rounds
    assert settled == {"service": [50, 50], "floor": [50, 50], "floor_grouped": [50, 50]}
    assert report["service_jobs_settled"] == 50 and report["target_ratio"] == 0.5
    assert list(tmp_path.iterdir()) == []


def test_the_webhook_bench_refuses_zero_rounds_in_one_line(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--rounds", "0")
    assert done.returncode == 2 and done.stdout == ""
    last_line = done.stderr.splitlines()[-1]
    assert last_line.endswith("--rounds 0: give a whole number of at least 1 (3 is the default)")
    assert list(tmp_path.iterdir()) == []
