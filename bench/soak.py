"""Soak: does a local stack that keeps serving for days grow without bound?

    python bench/soak.py [--duration-s 300] [--sample-s 10] [--concurrency 2] [--pause-every-s 0]
                         [--stack staging] [--home DIR] [--stacks-file F] [--keep-up]

Brings the stack up with `goldgate up` (in a fresh GOLDGATE_HOME unless --home is given), then for
`--duration-s` drives a steady closed loop of real jobs through the public API: create -> the RunPod
emulator -> a worker (the real handler under the real SDK loop) -> the ComfyUI emulator -> the webhook
-> `/api/status` polls -> the result fetched through its signed URL; and every `--bad-every` jobs some requests
the service refuses (bad token, unknown workflow, malformed JSON, an unknown job, a forged webhook, a missing
result), each of which must get a 4xx, and one `/api/metrics` read.
`--pause-every-s S` stops the load for the endpoint's idle timeout + 5 s every S seconds, so workers
scale to zero and new ones start (worker churn: new processes, new log files).

Every `--sample-s` it samples every process of the stack (the stack host, the service under its
lifeline, each RunPod worker process, which holds the ComfyUI emulator, and the SDK's child of each): RSS (and
RssAnon, the heap: the rest is mapped files, e.g. the service's mmap of its SQLite file), open fds, threads, child
processes and zombies; and the disk use of the stack's state dir (the SQLite database and
its WAL, each log, the result store, the workers' scratch space).

Prints one JSON object: the load (jobs, bad requests, errors), per process role and per disk item the
first and last sample after warm-up, growth per 1,000 jobs (least-squares slope against jobs done) for
the whole run and for each half, and `levels_off`: growth in the second half at most a quarter of the
first half's, or too small to matter (under `noise_per_1000_jobs`); `unbounded` lists the rest. Roles whose
processes change (workers come and go) are summed over the live processes of the role. `--samples-out F` keeps
every raw sample.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Below these per 1,000 jobs a growth is noise (allocator slack, a log line's length), whatever its slope.
NOISE = {"rss_kb": 2048, "rss_anon_kb": 2048, "fds": 2, "threads": 2, "children": 1, "zombies": 1, "processes": 1,
         "bytes": 64 * 1024, "files": 2}


def platform_for(home: Path, stacks_file: Path | None) -> Any:
    """The stacks as `goldgate up` / `down` see them, with an optional stacks file of their own (the CLI reads the
    shipped one; a soak may want, e.g., a shorter `local.result_retention_s`)."""
    from goldgate import spec as specs
    from goldgate.local.platform import LocalPlatform

    return LocalPlatform(home, stacks_file or specs.LOCAL_STACKS_FILE)


# -- processes ------------------------------------------------------------------------------------------
def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state) for every process visible in /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        table[int(entry)] = (int(rest[1]), rest[0])
    return table


def _role(pid: int, host_pid: int) -> str:
    if pid == host_pid:
        return "stackhost"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    text = b" ".join(argv).decode(errors="replace")
    if "service.local_server" in text:
        return "service"
    if "goldgate.local.worker_process" in text:
        return "worker"
    return "other"


def _one_process(pid: int, table: dict[int, tuple[int, str]]) -> dict[str, int] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    children = [c for c, (ppid, _) in table.items() if ppid == pid]
    # RssAnon is the heap; the rest of RSS is mapped files (the service maps its SQLite file: it grows with the db).
    return {"rss_kb": int(fields.get("VmRSS", "0 kB").split()[0]),
            "rss_anon_kb": int(fields.get("RssAnon", "0 kB").split()[0]), "fds": fds,
            "threads": int(fields.get("Threads", "0")), "children": len(children),
            "zombies": sum(1 for c in children if table[c][1] == "Z")}


def sample_processes(host_pid: int) -> dict[str, dict[str, int]]:
    """Per role, the sums over its live processes (and how many there are)."""
    table = _proc_table()
    tree, todo = [], [host_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(c for c, (ppid, _) in table.items() if ppid == pid)
    roles: dict[str, dict[str, int]] = {}
    for pid in tree:
        if table.get(pid, (0, ""))[1] == "Z":
            continue  # counted as its parent's zombie
        one = _one_process(pid, table)
        if one is None:
            continue
        role = _role(pid, host_pid)
        if role == "worker" and _role(table[pid][0], host_pid) == "worker":
            role = "worker_child"  # a worker's own children (the SDK's) carry its command line
        into = roles.setdefault(role, Counter())  # type: ignore[arg-type]
        into.update({**one, "processes": 1})
    return {role: dict(v) for role, v in roles.items()}


# -- disk -----------------------------------------------------------------------------------------------
def _usage(path: Path) -> tuple[int, int]:
    """(bytes on disk, files) under path."""
    if path.is_file():
        return path.stat().st_blocks * 512, 1
    total = files = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
                files += 1
            except OSError:
                pass
    return total, files


def sample_disk(state_dir: Path, db_path: Path, logs_dir: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db_path}{suffix}")
        out[f"db{suffix or ''}"] = {"bytes": path.stat().st_size if path.exists() else 0}
    worker_logs = [0, 0]
    if logs_dir.is_dir():
        for log in sorted(logs_dir.iterdir()):
            if log.name.startswith("worker-"):
                size, _ = _usage(log)
                worker_logs[0] += size
                worker_logs[1] += 1
            elif log.is_file():
                out[f"logs/{log.name}"] = {"bytes": _usage(log)[0]}
    out["logs/worker-*.log"] = {"bytes": worker_logs[0], "files": worker_logs[1]}
    seen = {db_path, logs_dir, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")}
    for child in sorted(state_dir.iterdir()):
        if child in seen:
            continue
        size, files = _usage(child)
        out[child.name + ("/" if child.is_dir() else "")] = {"bytes": size, "files": files}
    return out


# -- load -----------------------------------------------------------------------------------------------
class Load:
    def __init__(self, status: dict[str, Any], workflow: str, bad_every: int) -> None:
        self.token = Path(status["api_token_file"]).read_text().strip()
        self.base = status["api_url"]
        self.workflow = workflow
        self.bad_every = bad_every
        self.lock = threading.Lock()
        self.done = Counter()  # type: ignore[var-type]
        self.errors: list[str] = []
        self.paused = threading.Event()
        self.stop = threading.Event()
        self.n = 0

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=60)

    def count(self, what: str, error: str | None = None) -> None:
        with self.lock:
            self.done[what] += 1
            if error and len(self.errors) < 20:
                self.errors.append(error[:300])

    def run(self) -> None:
        with self.client() as api:
            while not self.stop.is_set():
                if self.paused.is_set():
                    self.stop.wait(0.2)
                    continue
                with self.lock:
                    self.n += 1
                    n = self.n
                try:
                    self.job(api, n)
                    if n % self.bad_every == 0:
                        self.bad(api, n)
                except httpx.HTTPError as exc:
                    self.count("transport_error", f"{type(exc).__name__}: {exc}")

    def job(self, api: httpx.Client, n: int) -> None:
        created = api.post("/api/queue/create", json={"workflow_id": self.workflow,
                                                      "inputs": {"prompt": f"soak {n}", "seed": n,
                                                                 "width": 512, "height": 512}})
        if created.status_code != 202:
            self.count("create_refused", f"create {created.status_code}: {created.text}")
            return
        job_id = created.json()["job_id"]
        deadline = time.monotonic() + 300
        while True:
            body = api.get(f"/api/status/{job_id}").json()
            self.count("status_polls")
            if body.get("status") not in ("queued", "in_progress"):
                break
            if time.monotonic() > deadline:
                self.count("stuck", f"job {job_id} still {body.get('status')} after 300 s")
                return
            time.sleep(0.1)
        if body["status"] != "completed":
            self.count("failed", f"job {job_id} ended {body['status']}: {body.get('error')}")
            return
        for result in body.get("results", []):
            image = api.get(result["url"])
            if image.status_code != 200 or image.content[:4] != b"\x89PNG":
                self.count("result_fetch_failed", f"result {result['url']}: {image.status_code}")
                return
        self.count("completed")

    def bad(self, api: httpx.Client, n: int) -> None:
        """Requests the service refuses (each must be refused with a 4xx, never a 5xx), and a metrics read."""
        tries = [
            api.post("/api/queue/create", json={"workflow_id": "no-such-workflow", "inputs": {}}),
            api.post("/api/queue/create", content=b"{not json", headers={"Content-Type": "application/json"}),
            api.get("/api/status/00000000-0000-0000-0000-000000000000"),
            api.get(f"/api/status/job-{n}", headers={"Authorization": "Bearer wrong"}),
            api.post(f"/api/runpod/webhook?job=job-{n}&sig=00", json={"id": "x", "status": "COMPLETED"}),
            api.get(f"/api/result/results/nothing-{n}.png"),
        ]
        metrics = api.get("/api/metrics")  # and one good read that scans the tables (the dashboards' poll)
        self.count("metrics_reads" if metrics.status_code == 200 else "metrics_failed",
                   None if metrics.status_code == 200 else f"GET /api/metrics: {metrics.status_code}")
        for r in tries:
            self.count("bad_request" if 400 <= r.status_code < 500 else "bad_request_not_4xx",
                       None if r.status_code < 500 else f"{r.request.method} {r.request.url.path}: {r.status_code}")


# -- analysis -------------------------------------------------------------------------------------------
def slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def growth(samples: list[dict[str, Any]], section: str) -> dict[str, Any]:
    keys = sorted({k for s in samples for k in s[section]})
    out: dict[str, Any] = {}
    for key in keys:
        metrics = sorted({m for s in samples for m in s[section].get(key, {})})
        row: dict[str, Any] = {}
        for metric in metrics:
            xs = [s["jobs"] for s in samples]
            ys = [s[section].get(key, {}).get(metric, 0) for s in samples]
            half = len(xs) // 2
            whole, first, second = (slope(xs, ys) * 1000, slope(xs[:half + 1], ys[:half + 1]) * 1000,
                                    slope(xs[half:], ys[half:]) * 1000)
            noise = NOISE.get(metric, 0)
            row[metric] = {"first": ys[0], "last": ys[-1], "max": max(ys), "per_1000_jobs": round(whole, 1),
                           "first_half_per_1000": round(first, 1), "second_half_per_1000": round(second, 1),
                           "levels_off": second <= noise or second <= first / 4}
        out[key] = row
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration-s", type=float, default=300)
    parser.add_argument("--sample-s", type=float, default=10)
    parser.add_argument("--warmup-s", type=float, default=20, help="load before the first sample")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--bad-every", type=int, default=5, help="send the refused requests after every Nth job")
    parser.add_argument("--pause-every-s", type=float, default=0,
                        help="every S seconds pause the load for the idle timeout + 5 s (worker churn); 0: never")
    parser.add_argument("--stack", default="staging")
    parser.add_argument("--workflow", default="sdxl-txt2img")
    parser.add_argument("--stacks-file", type=Path, help="the local stacks file (default: the shipped one)")
    parser.add_argument("--home", type=Path, help="GOLDGATE_HOME to use (default: a fresh temporary one)")
    parser.add_argument("--keep-up", action="store_true", help="leave the stack running afterwards")
    parser.add_argument("--samples-out", type=Path, help="also write every raw sample to this file (JSON)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="goldgate-soak-"))
    print(f"bringing up {args.stack} in {home}", file=sys.stderr)
    from goldgate.commands.local import ensure_up

    platform = platform_for(home, args.stacks_file)
    status = ensure_up(platform, args.stack).to_dict()
    state_dir = Path(status["state_dir"])
    host_pid = json.loads((state_dir / "state.json").read_text())["pid"]
    load = Load(status, args.workflow, args.bad_every)
    threads = [threading.Thread(target=load.run, daemon=True) for _ in range(args.concurrency)]
    samples: list[dict[str, Any]] = []
    idle_s = 35.0
    try:
        import yaml

        from goldgate import spec as specs

        stacks = yaml.safe_load((args.stacks_file or specs.LOCAL_STACKS_FILE).read_text())["stacks"]
        idle_s = float(stacks[args.stack]["endpoint"].get("idle_timeout_s", 30)) + 5
    except Exception:  # noqa: BLE001,S110 -- the default pause is fine
        pass
    try:
        for t in threads:
            t.start()
        time.sleep(args.warmup_s)
        started = time.monotonic()
        next_pause = started + args.pause_every_s if args.pause_every_s > 0 else float("inf")
        while True:
            now = time.monotonic()
            with load.lock:
                jobs = load.done["completed"]
                counts = dict(load.done)
            samples.append({"t_s": round(now - started, 1), "jobs": jobs, "counts": counts,
                            "processes": sample_processes(host_pid),
                            "disk": sample_disk(state_dir, Path(status["db_path"]), Path(status["logs_dir"]))})
            print(f"t={samples[-1]['t_s']:.0f}s jobs={jobs} "
                  f"rss_mb={ {r: v['rss_kb'] // 1024 for r, v in samples[-1]['processes'].items()} }",
                  file=sys.stderr)
            if now - started >= args.duration_s:
                break
            if now >= next_pause:
                load.paused.set()
                time.sleep(idle_s)
                load.paused.clear()
                next_pause = time.monotonic() + args.pause_every_s
            else:
                time.sleep(args.sample_s)
        load.stop.set()
        for t in threads:
            t.join(120)
        final_health = None
        try:
            key = Path(status["runpod_api_key_file"]).read_text().strip()
            final_health = httpx.get(f"{status['runpod_endpoint_base']}/{status['endpoint_id']}/health",
                                     headers={"Authorization": f"Bearer {key}"}, timeout=10).json()
        except (httpx.HTTPError, ValueError):
            pass
    finally:
        load.stop.set()
        if not args.keep_up:
            platform.down(args.stack)
            if args.home is None:
                shutil.rmtree(home, ignore_errors=True)
    if args.samples_out:
        args.samples_out.write_text(json.dumps(samples))
    counts = dict(load.done)
    wall = samples[-1]["t_s"] if samples else 0
    report = {
        "stack": args.stack, "duration_s": wall, "sample_s": args.sample_s, "concurrency": args.concurrency,
        "pause_every_s": args.pause_every_s, "samples": len(samples),
        "jobs_completed": counts.get("completed", 0),
        "jobs_per_s": round((samples[-1]["jobs"] - samples[0]["jobs"]) / wall, 2) if wall else None,
        "counts": counts, "errors": load.errors, "runpod_health": final_health,
        "noise_per_1000_jobs": NOISE,
        "processes": growth(samples, "processes"),
        "disk": growth(samples, "disk"),
    }
    report["unbounded"] = sorted(
        f"{section}:{key}:{metric}"
        for section in ("processes", "disk") for key, row in report[section].items()
        for metric, g in row.items() if not g["levels_off"])
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
