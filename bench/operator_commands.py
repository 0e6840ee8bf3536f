"""Time and peak memory of the operator commands run daily on a state home after a long life: a million jobs in the
stack's database, GBs of logs, a release ledger of two years of CI releases, thousands of golden reports, backups,
drill records and result objects.

    .venv/bin/python bench/operator_commands.py --workdir DIR [--jobs 1000000] [--log-jobs N] [--ledger 20000]
        [--reports 5000] [--backups 1000] [--objects 100000] [--keep]

It makes a real home first (`goldgate release` into DIR/home, reports into DIR/reports, one local drill), stops its
stacks, then grows STAGING's: the database (built from the real migrations by tests/ops/ops_fixtures.py, the newest
jobs still queued or running), the logs (per 1,000 jobs about 7 MB of service.jsonl, 2 MB of runpod-emulator.jsonl and
5 MB of worker logs, lines shaped like the release's own), the ledger (a valid hash chain ending in the release's
real entries), dated golden reports, backups with manifests, drill records and result objects. Then it runs each
command as the operator would (the CLI, in a child process, from the checkout's root) and prints one JSON object: per
command its exit status, wall seconds and peak RSS in MB (for `up`, the stack host's peak too), and the commands over
the limits an operator notices (2 s, 200 MB). DIR is removed at the end unless --keep (it holds GBs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "ops")]

from ops_fixtures import build_stack_db

from goldgate.release.ledger import GENESIS, entry_hash

GOLDGATE = [str(ROOT / ".venv" / "bin" / "goldgate")]
LIMIT_S, LIMIT_MB = 2.0, 200.0
MB = 1 << 20
# Log bytes per 1,000 jobs (a long-running stack's measured share of each log).
SERVICE_PER_1000, EMULATOR_PER_1000, WORKER_PER_1000 = 7 * MB, 2 * MB, 5 * MB
WORKER_LOG_BYTES = 5 * MB   # one worker's log: the worker served about 1,000 jobs
UNSETTLED = 40              # jobs still queued or running when the stack stopped


def run(argv: list[str], env: dict[str, str], timeout: float = 1800) -> dict[str, Any]:
    """One command in a child process: its exit status, wall time and peak RSS (of it and the children it waited
    for), and the last line it printed."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    out = b""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    # communicate() reaped it: its rusage is in RUSAGE_CHILDREN, which only grows: take the max over each run.
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = out.decode("utf-8", "replace").strip().splitlines()
    return {"rc": proc.returncode, "wall_s": round(wall, 2), "children_peak_mb_so_far": round(peak_kb / 1024, 1),
            "last_line": lines[-1][:200] if lines else ""}


def measured(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """run() in a fresh helper process of its own, so that RUSAGE_CHILDREN is this command's alone."""
    code = ("import json,sys; sys.path.insert(0, sys.argv[1]); from operator_commands import run; "
            "print(json.dumps(run(json.loads(sys.argv[2]), dict(__import__('os').environ))))")
    done = subprocess.run([sys.executable, "-c", code, str(ROOT / "bench"), json.dumps(argv)], env=env,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["peak_mb"] = result.pop("children_peak_mb_so_far")
    return result


def host_peak_mb(home: Path, stack: str) -> float | None:
    try:
        pid = json.loads((home / "stacks" / stack / "state.json").read_text())["pid"]
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, KeyError, ValueError):
        return None
    return None


def seed(workdir: Path, env: dict[str, str]) -> None:
    """A real home: one release (both stacks, the ledger, reports), one drill, stacks stopped."""
    done = subprocess.run([*GOLDGATE, "release", "--reports-dir", str(workdir / "reports")], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the seed release failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    subprocess.run([*GOLDGATE, "dr-drill", "staging"], cwd=ROOT, env=env, capture_output=True, check=True)
    subprocess.run([*GOLDGATE, "down", "all"], cwd=ROOT, env=env, capture_output=True, check=True)


def grow_database(stack_dir: Path, jobs: int, now: datetime) -> None:
    db = stack_dir / "db.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    start = (now - timedelta(seconds=jobs)).strftime("%Y-%m-%dT%H:%M:%SZ")
    build_stack_db(db, jobs=jobs, start=start)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE jobs SET status = CASE WHEN rowid % 2 = 0 THEN 'queued' ELSE 'in_progress' END, "
                     "finished_at = NULL, results_json = NULL WHERE rowid > (SELECT max(rowid) FROM jobs) - ?",
                     (UNSETTLED,))
        # Ids as the service makes them (32 hex characters), so that `recover` takes one.
        unsettled = "status IN ('queued', 'in_progress')"
        conn.execute(f"DELETE FROM job_metrics WHERE job_id IN (SELECT id FROM jobs WHERE {unsettled})")
        conn.execute(f"DELETE FROM webhook_deliveries WHERE job_id IN (SELECT id FROM jobs WHERE {unsettled})")
        conn.execute(f"UPDATE jobs SET id = printf('%032x', rowid) WHERE {unsettled}")
        # As the service writes each row since migration 0003: the images its job made (one each here).
        conn.execute("UPDATE job_metrics SET images = CASE WHEN status = 'completed' THEN 1 ELSE 0 END")
        conn.execute("ANALYZE")
    conn.close()


def _grow_log(path: Path, target_bytes: int, template: list[str]) -> None:
    """Prepend `target_bytes` of lines like `template` (dated long ago) to the log at `path`, keeping its own lines
    last: the tail is what the stack wrote most recently."""
    own = path.read_bytes() if path.exists() else b""
    block_lines = [line.replace('"ts":"20', '"ts":"19', 1) for line in template if line.strip()]
    block = ("\n".join(block_lines) + "\n").encode()
    chunk = block * max(1, (4 * MB) // max(1, len(block)))
    tmp = path.with_name(path.name + ".grow")
    with open(tmp, "wb") as fh:
        written = 0
        while written < target_bytes:
            fh.write(chunk)
            written += len(chunk)
        fh.write(own)
    os.replace(tmp, path)


def grow_logs(stack_dir: Path, jobs: int, now: datetime) -> int:
    logs = stack_dir / "logs"
    for name, per in (("service.jsonl", SERVICE_PER_1000), ("runpod-emulator.jsonl", EMULATOR_PER_1000)):
        template = (logs / name).read_text().splitlines()
        _grow_log(logs / name, jobs * per // 1000, template)
    worker_template = next(logs.glob("worker-*.log")).read_bytes()
    body = worker_template * max(1, WORKER_LOG_BYTES // max(1, len(worker_template)))
    count = max(1, jobs * WORKER_PER_1000 // 1000 // WORKER_LOG_BYTES)
    span = (jobs + 3600)   # the seconds the jobs span: each worker's log last written somewhere in it
    for i in range(count):
        path = logs / f"worker-{hashlib.sha256(str(i).encode()).hexdigest()[:14]}.log"
        path.write_bytes(body)
        when = (now - timedelta(seconds=span * (count - i) / count)).timestamp()
        os.utime(path, (when, when))
    return count


def grow_ledger(home: Path, entries: int) -> int:
    """A chain of `entries`: synthetic releases (build, deploy, golden, promotion intent and outcome, smoke) of
    two years, then the seed's own entries re-chained last, so the gate sees the real state."""
    real = [json.loads(line) for line in (home / "ledger.jsonl").read_text().splitlines() if line.strip()]
    shapes = real[:6]
    lines, prev, seq = [], GENESIS, 0
    start = datetime.now(UTC) - timedelta(days=730)

    def add(fields: dict[str, Any], ts: str) -> None:
        nonlocal prev, seq
        seq += 1
        body = {k: v for k, v in fields.items() if k not in ("hash", "mac", "prev", "seq", "ts")}
        body.update(seq=seq, ts=ts, prev=prev)
        line = {**body, "hash": entry_hash(body)}
        prev = line["hash"]
        lines.append(json.dumps(line, sort_keys=True, separators=(",", ":")))

    synthetic = entries - len(real)
    for i in range(synthetic):
        shape = json.loads(json.dumps(shapes[i % len(shapes)]))
        release = i // len(shapes)
        fake = hashlib.sha256(f"release-{release}".encode()).hexdigest()
        text = json.dumps(shape).replace(real[0]["image"].split("sha256:")[1], fake)
        ts = (start + timedelta(minutes=52 * i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        add(json.loads(text), ts)
    for entry in real:
        add(entry, entry["ts"])
    (home / "ledger.jsonl").write_text("\n".join(lines) + "\n")
    return len(lines)


def grow_reports(reports: Path, count: int, now: datetime) -> None:
    json_text = (reports / "latest.json").read_text()
    html_text = (reports / "latest.html").read_text()
    for i in range(count // 2):
        stamp = (now - timedelta(hours=3 * (i + 1))).strftime("%Y%m%dT%H%M%S.%fZ")
        (reports / f"{stamp}-staging.json").write_text(json_text)
        (reports / f"{stamp}-staging.html").write_text(html_text)


def grow_backups(home: Path, stack: str, count: int, now: datetime) -> None:
    """`count` backups (small files: only their number matters to what reads them) with manifests and as many
    dated drill records, 40 minutes apart, all inside the backup window."""
    backups, drills = home / "backups" / stack, home / "drills" / stack
    template = next(backups.glob("*.sqlite"))
    manifest = json.loads(template.with_name(template.name.replace(".sqlite", ".manifest.json")).read_text())
    record = json.loads((drills / "latest-local.json").read_text())
    for i in range(1, count):
        when = now - timedelta(minutes=40 * i)
        stamp = when.strftime("%Y%m%dT%H%M%S.%fZ")
        shutil.copyfile(template, backups / f"{stamp}.sqlite")
        (backups / f"{stamp}.manifest.json").write_text(json.dumps({**manifest, "file": f"{stamp}.sqlite"}))
        (drills / f"{when.strftime('%Y%m%dT%H%M%S.%f')[:-3]}Z-local.json").write_text(json.dumps(record))


def grow_objects(stack_dir: Path, count: int, now: datetime) -> None:
    bucket = next((stack_dir / "objects").iterdir())
    body = b"\x89PNG\r\n\x1a\n" + os.urandom(2040)
    for i in range(count):
        key = f"results/{i:032x}/0.png"
        name = hashlib.sha256(key.encode()).hexdigest()
        (bucket / f"{name}.bin").write_bytes(body)
        uploaded = (now - timedelta(seconds=5 * 86400 * (count - i) / count)).isoformat()
        (bucket / f"{name}.json").write_text(json.dumps({
            "key": key, "metadata": {"content-type": "image/png", "x-amz-meta-sha256": hashlib.sha256(body).hexdigest()},
            "uploaded": uploaded.replace("+00:00", "")}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])  # the first paragraph, whole
    parser.add_argument("--workdir", type=Path, required=True, help="where the home is made (GBs; removed at the end)")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--log-jobs", type=int, help="the jobs the logs stand for (default: --jobs)")
    parser.add_argument("--ledger", type=int, default=20_000)
    parser.add_argument("--reports", type=int, default=5_000)
    parser.add_argument("--backups", type=int, default=1_000)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the workdir (its home) afterwards")
    parser.add_argument("--reuse", action="store_true", help="the workdir already holds a grown home: only measure")
    parser.add_argument("--only", help="measure only the commands whose name starts with one of these (comma-separated)")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    home, reports = workdir / "home", workdir / "reports"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOLDGATE_", "CI"))}
    env["GOLDGATE_HOME"] = str(home)
    stack_dir = home / "stacks" / "staging"
    sizes: dict[str, Any] = {}
    try:
        if not args.reuse:
            if workdir.exists():
                raise SystemExit(f"{workdir} exists; remove it, or pass --reuse to measure the home it holds")
            workdir.mkdir(parents=True)
            t0 = time.perf_counter()
            seed(workdir, env)
            now = datetime.now(UTC)
            grow_database(stack_dir, args.jobs, now)
            sizes["worker_logs"] = grow_logs(stack_dir, args.log_jobs or args.jobs, now)
            sizes["ledger_entries"] = grow_ledger(home, args.ledger)
            grow_reports(reports, args.reports, now)
            grow_backups(home, "staging", args.backups, now)
            grow_objects(stack_dir, args.objects, now)
            sizes["grow_s"] = round(time.perf_counter() - t0, 1)
        sizes["db_mb"] = round((stack_dir / "db.sqlite").stat().st_size / MB)
        sizes["logs_mb"] = round(sum(p.stat().st_size for p in (stack_dir / "logs").iterdir()) / MB)
        sizes["ledger_mb"] = round((home / "ledger.jsonl").stat().st_size / MB, 1)
        unsettled = sqlite3.connect(stack_dir / "db.sqlite").execute(
            "SELECT id FROM jobs WHERE status = 'in_progress' ORDER BY created_at DESC LIMIT 1").fetchone()
        rp = ["--reports-dir", str(reports)]
        commands: list[tuple[str, list[str]]] = [
            ("status (stopped)", ["status"]),
            ("history", ["history"]),
            ("history --limit 20", ["history", "--limit", "20"]),
            ("metrics staging", ["metrics", "staging"]),
            ("promote --check", ["promote", "--check", *rp]),
            ("prune staging --dry-run", ["prune", "staging", "--keep-days", "30", "--dry-run"]),
            ("doctor --stack staging", ["doctor", "--stack", "staging"]),
            ("up staging (stopped)", ["up", "staging"]),
            ("status (running)", ["status"]),
            ("checklist staging", ["checklist", "staging", *rp]),
            ("recover", ["recover", unsettled[0] if unsettled else "none", "--stack", "staging"]),
            ("dr-drill staging", ["dr-drill", "staging"]),
        ]
        if args.only:
            commands = [(name, argv) for name, argv in commands if name.startswith(tuple(args.only.split(",")))]
        results: dict[str, Any] = {}
        for name, argv in commands:
            results[name] = measured([*GOLDGATE, *argv], env)
            if name.startswith("up "):
                results[name]["host_peak_mb"] = host_peak_mb(home, "staging")
            print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
        subprocess.run([*GOLDGATE, "down", "all"], cwd=ROOT, env=env, capture_output=True, check=False)
    finally:
        if not args.keep:
            subprocess.run([*GOLDGATE, "down", "all"], cwd=ROOT, env=env, capture_output=True, check=False)
            shutil.rmtree(workdir, ignore_errors=True)
    over = [name for name, r in results.items()
            if r["wall_s"] > LIMIT_S or r["peak_mb"] > LIMIT_MB or (r.get("host_peak_mb") or 0) > LIMIT_MB]
    print(json.dumps({"home": sizes, "commands": results, "over_limits": over,
                      "limits": {"wall_s": LIMIT_S, "peak_mb": LIMIT_MB}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
