"""bench/input_upload.py, run small (tiny PNGs, one round, two clients): it uploads through the local server and
the Worker's entry and reports, for each size and client count, throughput and latency, the server's memory over
its idle RSS as copies of an upload, the Worker path's heap against its 128 MB limit, and the header check alone.
No timing is judged here: only that every figure is there and could be true."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SIZES = (2_000, 30_000)


def _bench(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "input_upload.py"), *argv], cwd=ROOT,
                          env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True, text=True,
                          timeout=300, check=False)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def test_the_input_bench_reports_uploads_memory_and_the_header_check_for_each_size(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--sizes", ",".join(map(str, SIZES)), "--rounds", "1", "--clients", "2",
                  "--volume-mb", "0.1", "--warmup", "3", "--json")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)

    sizes = report["sizes"]
    assert len(sizes) == 2 and all(asked // 2 < got <= asked for asked, got in zip(SIZES, sizes)), sizes
    assert report["rounds"] == 1 and report["clients"] == 2

    runs = report["local"]["runs"]
    assert sorted((run["bytes"], run["clients"]) for run in runs) == sorted((s, n) for s in sizes for n in (1, 2))
    assert runs[0]["bytes"] == max(sizes)  # the largest first: its memory is read before other sizes ran
    for run in runs:
        assert run["errors"] == 0 and run["error_statuses"] == [], run
        assert run["uploads"] == report["uploads_per_run"][str(run["bytes"])] >= 4, run
        assert run["uploads_per_s"] > 0 and run["mb_per_s"] >= 0 and 0 < run["p50_ms"] <= run["p99_ms"], run
        assert set(run["cpu_us_per_upload"]) == {"server", "s3_store"}, run
        assert run["uploads_per_s_rounds"] == [run["uploads_per_s"]], run

    memory = report["local"]["memory"]
    assert memory["bytes"] == max(sizes) and memory["peak_reset"] is True
    (idle,) = memory["idle_rss_bytes_rounds"]
    assert 10 * 2**20 < idle < 2**30  # a Python server's resident set, in bytes (not kB, not pages)
    for name, clients in (("sequential", 1), ("concurrent", 2)):
        figures = memory[name]
        assert figures["clients"] == clients
        (growth,) = figures["growth_bytes_rounds"]
        assert _number(growth) and abs(growth) < 2**30
        assert figures["copies_per_upload"] == figures["copies_per_upload_rounds"][0] == \
            round(growth / (clients * max(sizes)), 2)

    worker = report["worker"]
    assert worker["bytes"] == max(sizes) and worker["limit_bytes"] == 128 * 2**20
    for name, uploads in (("one", 1), ("concurrent", 2)):
        figures = worker[name]
        assert figures["uploads"] == uploads and figures["errors"] == 0, figures
        body = uploads * worker["bytes"]
        # the entry reads each body into Python bytes: at least one copy of it, at most a handful
        assert body <= figures["python_peak_bytes"] < 8 * body + 2**20, figures
        assert figures["python_at_put_bytes"] <= figures["python_peak_bytes"]
        assert figures["isolate_estimate_bytes"] >= max(figures["python_peak_bytes"], body)
        assert figures["share_of_limit"] == round(figures["isolate_estimate_bytes"] / worker["limit_bytes"], 3)
    assert worker["uploads_at_once_within_limit"] == worker["limit_bytes"] // worker["one"]["isolate_estimate_bytes"]

    header = report["header_check"]
    assert [part["bytes"] for part in header] == sizes
    for part in header:
        assert part["width"] > 0 and part["height"] > 0
        assert part["read_header_us"] > 0 and part["sha256_us"] > 0
        assert 0 < part["read_header_share_of_upload_p50"] < 1, part
    assert list(tmp_path.iterdir()) == []  # the databases, logs and Worker stand-ins' files are gone


def test_the_input_bench_refuses_a_size_over_the_upload_limit_in_one_line(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--sizes", "2000,30000000")
    assert done.returncode == 2 and done.stdout == ""
    last_line = done.stderr.splitlines()[-1]
    assert "'2000,30000000'" in last_line and "20971520" in last_line and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
