"""End-to-end overhead on the local target: latency beyond the worker's executionTime, webhook-driven
(the live design) next to detecting completion by polling RunPod `/status` once a second.

    python bench/e2e_overhead.py [--jobs 200] [--concurrency 2] [--stack staging] [--home DIR] [--json]

Brings the stack up with `goldgate up` (in a fresh GOLDGATE_HOME unless --home is given), runs a few
warm-up jobs, then `--jobs` jobs closed-loop. For each job it records:
- webhook e2e: the service's own `timings.e2e_ms` (create -> webhook applied), and the client's view
  (submit -> `/api/status` says completed, read every 50 ms);
- polling e2e: submit -> the first once-a-second RunPod `/status` read that shows the job finished;
and subtracts the job's executionTime (`timings.run_ms`). Reports P50/P95 of each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
GOLDGATE = [sys.executable, "-c", "from goldgate.cli import main; raise SystemExit(main())"]


@dataclass(frozen=True)
class Sample:
    job_id: str
    run_ms: int
    service_e2e_ms: int
    client_e2e_ms: float
    poll_e2e_ms: float


def goldgate(*args: str, home: Path) -> dict[str, Any]:
    env = {**os.environ, "GOLDGATE_HOME": str(home)}
    out = subprocess.run([*GOLDGATE, *args], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"goldgate {' '.join(args)} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout) if "--json" in args else {}


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


class Bench:
    def __init__(self, status: dict[str, Any], workflow: str, poll_s: float) -> None:
        token = Path(status["api_token_file"]).read_text().strip()
        key = Path(status["runpod_api_key_file"]).read_text().strip()
        self.api = httpx.Client(base_url=status["api_url"], headers={"Authorization": f"Bearer {token}"},
                                timeout=30)
        self.runpod = httpx.Client(base_url=f"{status['runpod_endpoint_base']}/{status['endpoint_id']}",
                                   headers={"Authorization": f"Bearer {key}"}, timeout=30)
        self.workflow = workflow
        self.poll_s = poll_s
        self.lock = threading.Lock()

    def one(self, n: int) -> Sample:
        t0 = time.monotonic()
        created = self.api.post("/api/queue/create", json={"workflow_id": self.workflow,
                                                           "inputs": {"prompt": f"bench {n}", "seed": n + 1000}})
        if created.status_code not in (200, 201, 202):
            raise SystemExit(f"/api/queue/create answered {created.status_code}: {created.text[:300]}")
        job_id = created.json()["job_id"]
        runpod_id = None
        client_done = poll_done = None
        next_poll = t0 + self.poll_s
        status: dict[str, Any] = {}
        while client_done is None or poll_done is None:
            now = time.monotonic()
            if client_done is None:
                status = self.api.get(f"/api/status/{job_id}").json()
                runpod_id = runpod_id or status.get("runpod_job_id")
                if status["status"] not in ("queued", "in_progress"):
                    client_done = time.monotonic()
            if poll_done is None and runpod_id and now >= next_poll:
                next_poll += self.poll_s
                rp = self.runpod.get(f"/status/{runpod_id}").json()
                if rp["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"):
                    poll_done = now
            time.sleep(0.05)
        if status["status"] != "completed":
            raise SystemExit(f"job {job_id} ended {status['status']}: {status.get('error')}")
        final = self.api.get(f"/api/status/{job_id}").json()
        timings = final["timings"]
        return Sample(job_id, int(timings["run_ms"]), int(timings["e2e_ms"]), (client_done - t0) * 1000,
                      (poll_done - t0) * 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--stack", default="staging")
    parser.add_argument("--workflow", default="sdxl-txt2img")
    parser.add_argument("--home", type=Path, help="GOLDGATE_HOME to use (default: a fresh temporary one)")
    parser.add_argument("--keep-up", action="store_true", help="leave the stack running afterwards")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="goldgate-bench-"))
    print(f"bringing up {args.stack} in {home}", file=sys.stderr)
    status = goldgate("up", args.stack, "--json", home=home)
    bench = Bench(status, args.workflow, 1.0)
    try:
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(bench.one, range(-args.warmup, 0)))
            started = time.monotonic()
            samples = list(pool.map(bench.one, range(args.jobs)))
            wall = time.monotonic() - started
    finally:
        if not args.keep_up:
            goldgate("down", args.stack, home=home)
            if args.home is None:  # the stack's secrets and logs go with it
                shutil.rmtree(home, ignore_errors=True)

    def summary(name: str, e2e: list[float]) -> dict[str, Any]:
        over = [e - s.run_ms for e, s in zip(e2e, samples, strict=True)]
        return {"method": name, "e2e_p50_ms": round(pct(e2e, 50)), "e2e_p95_ms": round(pct(e2e, 95)),
                "overhead_p50_ms": round(pct(over, 50)), "overhead_p95_ms": round(pct(over, 95))}

    rows = [summary("webhook (service-recorded e2e_ms)", [s.service_e2e_ms for s in samples]),
            summary("webhook (client sees /api/status, 50 ms reads)", [s.client_e2e_ms for s in samples]),
            summary("poll RunPod /status once a second", [s.poll_e2e_ms for s in samples])]
    report = {"jobs": args.jobs, "concurrency": args.concurrency, "stack": args.stack, "workflow": args.workflow,
              "wall_s": round(wall, 1), "run_ms_p50": pct([s.run_ms for s in samples], 50), "results": rows,
              "samples": [asdict(s) for s in samples] if args.json else None}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{args.jobs} jobs, concurrency {args.concurrency}, {report['wall_s']} s; "
              f"worker executionTime P50 {report['run_ms_p50']} ms")
        print(f"{'method':50} {'e2e P50':>8} {'e2e P95':>8} {'over P50':>9} {'over P95':>9}  (ms)")
        for r in rows:
            print(f"{r['method']:50} {r['e2e_p50_ms']:>8} {r['e2e_p95_ms']:>8} {r['overhead_p50_ms']:>9} "
                  f"{r['overhead_p95_ms']:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
