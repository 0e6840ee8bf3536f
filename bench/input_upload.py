"""Input uploads (POST /api/inputs): what an upload costs the local server and the Worker's entry, next to the
header check alone, measured in the same run.

Images: real PNGs from Pillow, of random noise so they do not compress, each the largest that fits in its
`--sizes` entry (default about 100 KB, 2 MB, and 20 MiB, the max_input_bytes limit).
Local: `python -m service.local_server` over moto's S3 server (as bench/webhook_throughput.py), on 127.0.0.1
free ports. Each size is uploaded by one client, then by `--clients` clients at once (threads, each with one
keep-alive http.client connection): uploads/s, p50/p99 latency (ms) and CPU per upload of the server and of
the S3 store. Memory: every round starts a fresh server, warms it with uploads of the smallest size, reads its
idle RSS (/proc/<pid>/status VmRSS), then runs the largest size first, one client and then `--clients`, the
peak RSS of each run (VmHWM, reset through /proc/<pid>/clear_refs before it) over the idle RSS divided by the
upload size: how many copies of a body the path holds at once (per upload, in the concurrent run).
Worker: service.cloudflare_entry's Default.fetch in this process over the stand-ins of D1 and R2
(tests/service/test_service_cloudflare_entry.py), the body handed over in 64 KiB chunks, each a fresh bytes
object as Pyodide's to_bytes() copies a Uint8Array out of JS memory: tracemalloc's peak for one upload of the
largest size, and for `--clients` at once in one isolate (an isolate serves concurrent requests), over the
body's size and against the 128 MB limit. tracemalloc sees the Python heap only; the JS heap holds one more copy
while R2's put runs (the ArrayBuffer _array_buffer fills), counted in `isolate_estimate_bytes` as the larger of
the Python peak and the Python heap at the put plus that copy of each upload taken. Pyodide's wasm memory never
shrinks: the Python peak stays the isolate's for its life. The interpreter's own footprint is not counted. The
entry reads at most UPLOADS_AT_ONCE x max_input_bytes of uploads at once: those past it are answered 503 unread
(`refused_busy`), and the copies are per upload taken. `--worker-only` runs this part alone.
Header check: service.inputs.read_header alone on the same bytes (and hashlib.sha256 of them, the other pass
over the body), microseconds per upload, and its share of the one-client p50.
Rounds (`--rounds`, default 3): each run's figures are its median round's by uploads/s, with every round's in
`*_rounds`; each copies ratio is the median of the per-round ratios. p99 is nearest-rank: of a run of few uploads
(9 of 20 MiB by default), the slowest. The default run took about 2 minutes on a 2-core machine (2026-12-02).

    .venv/bin/python bench/input_upload.py [--sizes 100000,2000000,20971520] [--clients 4] [--rounds 3]
                                           [--volume-mb 200] [--json] [--worker-only]

Prints a table, or with --json one JSON object. Exits 1 when any upload was not answered 201 (but for the
Worker's 503s of uploads past its budget).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import http.client
import importlib
import io
import json
import math
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.config import MAX_INPUT_BYTES
from service.inputs import read_header
from service.migrate import apply_sqlite

TOKEN = "bench-api-token-0123456789abcdef"
BUCKET = "bench-inputs"
S3_KEY_ID, S3_SECRET = "bench-s3-key-id-4f1c", "bench-s3-secret-9d2e7a"
WORKER_LIMIT_BYTES = 128 * 2**20  # a Worker isolate's memory limit (VENDOR_FACTS: 128 MB), taken as MiB
WORKER_CHUNK_BYTES = 64 * 1024  # the request body's chunks as the Worker reads them
DEFAULT_SIZES = "100000,2000000,20971520"


# ---- images ---------------------------------------------------------------------------------------------------

def noise_png(at_most: int, seed: int = 0) -> tuple[bytes, int, int]:
    """(a PNG of random RGB noise, its width, its height): the largest such PNG of at most `at_most` bytes, within
    a row of pixels. Noise does not compress: the file is its pixels' bytes and a few dozen more."""
    from PIL import Image

    rng = random.Random(seed)
    width = max(1, math.isqrt(max(1, at_most // 3)))
    height = max(1, at_most // (3 * width + 1))
    while True:
        picture = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
        out = io.BytesIO()
        picture.save(out, "PNG", compress_level=1)  # the level does not matter for noise; 1 is the quickest
        data = out.getvalue()
        if len(data) <= at_most or height == 1:
            return data, width, height
        height -= max(1, -(-(len(data) - at_most) // (3 * width + 1)))


# ---- the local server -----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port_file(path: Path, proc: subprocess.Popen, log: Path, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while not path.exists() or not path.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            last = (log.read_text().strip().splitlines() or ["(empty)"])[-1][:400]
            raise SystemExit(f"the service did not start (exit {proc.poll()}); its log's last line: {last}")
        time.sleep(0.05)
    return int(path.read_text())


def _cpu_s(pid: int) -> float:
    """utime + stime of a live process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_bytes(pid: int, field: str) -> int:
    """A /proc/<pid>/status memory field (VmRSS, VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"/proc/{pid}/status has no {field}: this bench reads Linux's /proc")


def _reset_peak(pid: int) -> bool:
    """Resets the process's VmHWM to its current RSS (Linux 4.0+); False where the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Server:
    """The service on a free port over the S3 store; its log in tmp/<name>.log."""

    def __init__(self, tmp: Path, name: str, s3_endpoint: str, limit: int) -> None:
        config = {"stack": "bench", "api_token": TOKEN, "webhook_secret": "bench-webhook-secret-0123456789",
                  "runpod_api_key": "bench-runpod-key", "runpod_endpoint_base": "http://127.0.0.1:9/v2/none",
                  "public_base_url": "http://127.0.0.1:1",
                  "workflows_dir": str(ROOT / "tests" / "service" / "fixtures" / "workflows"),
                  "db_path": str(tmp / f"{name}.sqlite"), "s3_endpoint_url": s3_endpoint, "s3_bucket": BUCKET,
                  "s3_access_key_id": S3_KEY_ID, "s3_secret_access_key": S3_SECRET, "host": "127.0.0.1",
                  "port": 0, "max_input_bytes": limit}
        conn = sqlite3.connect(tmp / f"{name}.sqlite", isolation_level=None)  # the host migrates; here, the bench
        try:
            apply_sqlite(conn, ROOT / "migrations")
        finally:
            conn.close()
        (tmp / f"{name}.json").write_text(json.dumps(config))
        os.chmod(tmp / f"{name}.json", 0o600)
        with (tmp / f"{name}.log").open("w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "service.local_server", "--config",
                                          str(tmp / f"{name}.json"), "--port-file", str(tmp / f"{name}.port")],
                                         cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            self.port = wait_port_file(tmp / f"{name}.port", self.proc, tmp / f"{name}.log")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def pct(values: list[float], p: int) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, -(-p * len(ordered) // 100) - 1)]


def upload_run(port: int, data: bytes, count: int, clients: int, watch: dict[str, int]) -> dict[str, Any]:
    """`count` uploads of `data` from `clients` threads, each with one keep-alive connection: throughput, latency,
    the statuses other than 201, and the CPU each process in `watch` spent per upload."""
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "image/png", "content-length": str(len(data))}
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    left = [count]
    ready = threading.Barrier(clients + 1)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.connect()
        ready.wait(timeout=60)
        try:
            while True:
                with lock:
                    if not left[0]:
                        return
                    left[0] -= 1
                started = time.perf_counter()
                conn.request("POST", "/api/inputs", body=data, headers=headers)
                reply = conn.getresponse()
                reply.read()
                took = time.perf_counter() - started
                with lock:
                    latencies.append(took)
                    if reply.status != 201:
                        errors.append(reply.status)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=60)  # every client connected: connecting is not measured
    cpu_before = {name: _cpu_s(pid) for name, pid in watch.items()}
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = {name: _cpu_s(pid) - cpu_before[name] for name, pid in watch.items()}
    done = len(latencies)
    if not done:
        raise SystemExit("no upload was answered; see the service's log")
    return {"bytes": len(data), "clients": clients, "uploads": done, "errors": len(errors),
            "error_statuses": sorted(set(errors)), "seconds": round(elapsed, 3),
            "uploads_per_s": round(done / elapsed, 1), "mb_per_s": round(done * len(data) / elapsed / 1e6, 1),
            "p50_ms": round(pct(latencies, 50) * 1000, 2), "p99_ms": round(pct(latencies, 99) * 1000, 2),
            "cpu_us_per_upload": {name: round(s * 1e6 / done, 1) for name, s in cpu.items()}}


def _s3(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET,
                        region_name="us-east-1", config=Config(request_checksum_calculation="when_required",
                                                               s3={"addressing_style": "path"}))


def empty_inputs(s3: Any) -> None:
    """Deletes the uploads, so the S3 store's memory and disk do not grow with every run."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="inputs/"):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})


def local_round(tmp: Path, index: int, s3_endpoint: str, s3: Any, moto_pid: int, images: list[bytes],
                clients: int, counts: list[int], warmup: int) -> tuple[list[dict], dict]:
    """One round on a fresh server: (the runs, largest size first; the memory of the largest size's runs)."""
    server = Server(tmp, f"service-{index + 1}", s3_endpoint, MAX_INPUT_BYTES)
    try:
        watch = {"server": server.proc.pid, "s3_store": moto_pid}
        upload_run(server.port, images[0], warmup, min(2, clients), {})  # imports, pools, first connections
        empty_inputs(s3)
        time.sleep(0.2)
        idle = _status_bytes(server.proc.pid, "VmRSS")
        memory: dict[str, Any] = {"bytes": len(images[-1]), "idle_rss_bytes": idle}
        runs = []
        order = sorted(range(len(images)), key=lambda i: -len(images[i]))
        for at in order:
            for n in dict.fromkeys((1, clients)):
                largest = at == order[0]
                if largest:
                    memory["peak_reset"] = _reset_peak(server.proc.pid)
                run = upload_run(server.port, images[at], counts[at], n, watch)
                if largest:
                    peak = _status_bytes(server.proc.pid, "VmHWM")
                    memory["sequential" if n == 1 else "concurrent"] = {
                        "clients": n, "peak_rss_bytes": peak, "growth_bytes": peak - idle,
                        "copies_per_upload": round((peak - idle) / (n * len(images[at])), 2)}
                empty_inputs(s3)
                runs.append(run)
            if at == order[0]:
                memory["retained_rss_bytes"] = _status_bytes(server.proc.pid, "VmRSS") - idle
        return runs, memory
    finally:
        server.stop()


def median_run(runs: list[dict]) -> dict:
    """The median round's run by uploads/s (of an even count, the lower middle one), with every round's figures."""
    middle = sorted(runs, key=lambda run: run["uploads_per_s"])[(len(runs) - 1) // 2]
    return {**middle, "uploads_per_s_rounds": [run["uploads_per_s"] for run in runs],
            "p50_ms_rounds": [run["p50_ms"] for run in runs],
            "server_cpu_us_rounds": [run["cpu_us_per_upload"]["server"] for run in runs]}


def median_memory(rounds: list[dict]) -> dict:
    """The memory figures of every round, each copies ratio the median of the rounds'."""
    first = rounds[0]
    report: dict[str, Any] = {"bytes": first["bytes"], "peak_reset": all(r["peak_reset"] for r in rounds),
                              "idle_rss_bytes_rounds": [r["idle_rss_bytes"] for r in rounds],
                              "retained_rss_bytes_rounds": [r["retained_rss_bytes"] for r in rounds]}
    for run in ("sequential", "concurrent"):
        if run in first:
            each = [r[run]["copies_per_upload"] for r in rounds]
            report[run] = {"clients": first[run]["clients"],
                           "growth_bytes_rounds": [r[run]["growth_bytes"] for r in rounds],
                           "copies_per_upload": round(statistics.median(each), 2), "copies_per_upload_rounds": each}
    return report


# ---- the Worker's entry ---------------------------------------------------------------------------------------

class PyodideBody:
    """A request body's ReadableStream as the Worker reads it: chunks of WORKER_CHUNK_BYTES, each `to_bytes()` a
    fresh Python copy (Pyodide copies a Uint8Array out of JS memory), each read a turn of the event loop, so
    uploads at once interleave as they do in an isolate."""

    def __init__(self, data: bytes) -> None:
        self.view, self.at = memoryview(data), 0

    def getReader(self) -> PyodideBody:
        return self

    async def read(self) -> Any:
        await asyncio.sleep(0)
        if self.at >= len(self.view):
            return types.SimpleNamespace(done=True, value=None)
        piece = self.view[self.at:self.at + WORKER_CHUNK_BYTES]
        self.at += len(piece)
        return types.SimpleNamespace(done=False, value=types.SimpleNamespace(to_bytes=lambda: bytes(piece)))

    async def cancel(self) -> None:
        self.at = len(self.view)


class SinkR2:
    """The R2 binding's put, keeping nothing: what it was handed, and the Python heap tracemalloc saw then."""

    def __init__(self) -> None:
        self.traced_at_put: list[int] = []

    async def put(self, key: str, value: Any, options: Any = None) -> Any:
        await asyncio.sleep(0)  # R2 answers later: other uploads of the isolate run meanwhile
        self.traced_at_put.append(tracemalloc.get_traced_memory()[0])
        return types.SimpleNamespace(key=key, size=len(value))

    async def head(self, key: str) -> None:
        return None


@contextlib.contextmanager
def worker_entry(tmp: Path, limit: int) -> Any:
    """(service.cloudflare_entry loaded over the stand-ins of the Workers runtime, its Default with env), the
    stand-in modules taken out of sys.modules again afterwards."""
    sys.path.insert(0, str(ROOT / "tests" / "service"))
    import test_service_cloudflare_entry as standins

    modules = standins._runtime_modules(with_jsnull=True)
    saved = {name: sys.modules.get(name) for name, _ in modules}
    saved["service.cloudflare_entry"] = sys.modules.pop("service.cloudflare_entry", None)
    sys.modules.update(dict(modules))
    try:
        entry = importlib.import_module("service.cloudflare_entry")
        env = standins.make_env(tmp / "cf", "http://127.0.0.1:9/v2/none", MAX_INPUT_BYTES=str(limit))
        env.API_TOKEN, env.RESULTS = TOKEN, SinkR2()
        # fetch: RunPod's, which an upload never calls (the tests' stand-in, as the runtime's needs js.AbortSignal)
        entry.Default._app = entry.build_app(env, fetch=standins.Fetch())
        try:
            yield entry.Default(standins.Ctx(), env), env, standins.JsRequest
        finally:
            entry.Default._app = None
            env.DB.conn.close()
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        sys.path.remove(str(ROOT / "tests" / "service"))


def worker_path(tmp: Path, data: bytes, warm: bytes, clients: int) -> dict[str, Any]:
    """tracemalloc's peak over the Python heap as it was before, for one upload of `data` and for `clients` at once,
    through the Worker's entry."""
    with worker_entry(tmp, MAX_INPUT_BYTES) as (worker, env, js_request), \
            contextlib.redirect_stdout(io.StringIO()) as lines:  # the entry logs to stdout

        def request(body: bytes) -> Any:
            sent = js_request("POST", "https://api.example/api/inputs", b"", {
                "authorization": f"Bearer {TOKEN}", "content-type": "image/png", "content-length": str(len(body))})
            sent.body = PyodideBody(body)
            return sent

        async def uploads(n: int, body: bytes) -> list[tuple[int, dict]]:
            replies = await asyncio.gather(*(worker.fetch(request(body)) for _ in range(n)))
            return [(reply.status, reply.headers) for reply in replies]

        loop = asyncio.new_event_loop()  # one, as an isolate's: the App built on it keeps it

        def measure(n: int, body: bytes) -> dict[str, Any]:
            lines.seek(0)
            lines.truncate()
            env.RESULTS.traced_at_put.clear()
            gc.collect()
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            replies = loop.run_until_complete(uploads(n, body))
            peak = tracemalloc.get_traced_memory()[1] - before
            at_put = max(env.RESULTS.traced_at_put, default=before) - before
            taken = sum(status == 201 for status, _ in replies)
            busy = sum(status == 503 and "retry-after" in headers for status, headers in replies)
            # At the put the JS heap holds one more copy of each body being put (its ArrayBuffer).
            isolate = max(peak, at_put + taken * len(body))
            each = max(1, taken) * len(body)
            return {"uploads": n, "taken": taken, "refused_busy": busy, "errors": n - taken - busy,
                    "python_peak_bytes": peak, "python_peak_copies_per_upload": round(peak / each, 2),
                    "python_at_put_bytes": at_put, "isolate_estimate_bytes": isolate,
                    "isolate_estimate_copies_per_upload": round(isolate / each, 2),
                    "share_of_limit": round(isolate / WORKER_LIMIT_BYTES, 3)}

        tracemalloc.start()
        try:
            measure(1, warm)  # builds the App: its imports and registry are the isolate's, not an upload's
            one = measure(1, data)
            many = measure(clients, data) if clients > 1 else None
        finally:
            tracemalloc.stop()
            loop.close()
    per_upload = one["isolate_estimate_bytes"]
    return {"bytes": len(data), "chunk_bytes": WORKER_CHUNK_BYTES, "limit_bytes": WORKER_LIMIT_BYTES,
            "js_copies_at_put": 1, "one": one, "concurrent": many,
            "uploads_at_once_within_limit": WORKER_LIMIT_BYTES // per_upload if per_upload else None}


# ---- the header check alone -----------------------------------------------------------------------------------

def parts_cost(data: bytes, repeat: int) -> dict[str, float]:
    """Microseconds per upload of read_header and of hashlib.sha256 over `data`, each the fastest of 5 batches."""
    def each(work: Any) -> float:
        best = math.inf
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(repeat):
                work()
            best = min(best, (time.perf_counter() - start) / repeat)
        return round(best * 1e6, 2)

    return {"read_header_us": each(lambda: read_header(data, "image/png")),
            "sha256_us": each(lambda: hashlib.sha256(data).hexdigest())}


# ---- the run --------------------------------------------------------------------------------------------------

def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give byte counts separated by commas, e.g. 100000,2000000") \
            from None
    if not sizes or sizes[0] < 100 or sizes[-1] > MAX_INPUT_BYTES:
        raise argparse.ArgumentTypeError(f"{text!r}: give sizes from 100 bytes to {MAX_INPUT_BYTES} (20 MiB, the "
                                         "max_input_bytes limit)")
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sizes", type=_sizes, default=_sizes(DEFAULT_SIZES),
                        help=f"upload sizes in bytes, each PNG the largest of at most that (default {DEFAULT_SIZES})")
    parser.add_argument("--clients", type=int, default=4, help="clients uploading at once in the concurrent runs")
    parser.add_argument("--rounds", type=int, default=3, help="measure every run this many times, each round on a "
                                                              "fresh server; figures are the median round's")
    parser.add_argument("--volume-mb", type=float, default=200,
                        help="megabytes each run uploads: the count is this over the size, at least 2 per client")
    parser.add_argument("--max-uploads", type=int, default=2000, help="the most uploads of one run")
    parser.add_argument("--warmup", type=int, default=20, help="uploads of the smallest size before each round")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the service logs afterwards")
    parser.add_argument("--worker-only", action="store_true",
                        help="measure the Worker's entry alone (the largest size; no local server, no header check)")
    args = parser.parse_args()
    for name in ("rounds", "clients", "warmup", "max_uploads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: give a whole number of at least 1")
    tmp = Path(tempfile.mkdtemp(prefix="gg-bench-inputs-"))
    try:
        report = _bench(args, tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report, indent=2) if args.json else table(report))
    failed = any(run["errors"] for run in report.get("local", {}).get("runs", [])) or \
        report["worker"]["one"]["errors"] or (report["worker"]["concurrent"] or {}).get("errors")
    return 1 if failed else 0


def _bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    made = [noise_png(size, seed) for seed, size in enumerate(args.sizes)]
    images = [data for data, _, _ in made]
    if args.worker_only:
        return {"sizes": [len(data) for data in images], "clients": args.clients,
                "worker": worker_path(tmp, images[-1], images[0], args.clients)}
    counts = [min(args.max_uploads, max(2 * args.clients, int(args.volume_mb * 1e6 // len(data)))) for data in images]
    parts = [parts_cost(data, max(3, min(1000, int(2e8 // len(data))))) for data in images]
    worker = worker_path(tmp, images[-1], images[0], args.clients)

    moto_port = free_port()
    moto = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p",
                             str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    try:
        endpoint = f"http://127.0.0.1:{moto_port}"
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", moto_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        s3 = _s3(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        rounds = [local_round(tmp, index, endpoint, s3, moto.pid, images, args.clients, counts, args.warmup)
                  for index in range(args.rounds)]
    finally:
        moto.terminate()
        moto.wait(timeout=10)
    runs = [median_run([r[0][at] for r in rounds]) for at in range(len(rounds[0][0]))]
    sequential = {run["bytes"]: run for run in runs if run["clients"] == 1}
    header = [{"bytes": len(data), "width": width, "height": height, **part,
               "read_header_share_of_upload_p50": round(part["read_header_us"] / (sequential[len(data)]["p50_ms"]
                                                                                    * 1000), 6)}
              for (data, width, height), part in zip(made, parts)]
    return {"sizes": [len(data) for data in images], "clients": args.clients, "rounds": args.rounds,
            "uploads_per_run": dict(zip((str(len(d)) for d in images), counts)),
            "local": {"runs": runs, "memory": median_memory([r[1] for r in rounds])},
            "worker": worker, "header_check": header}


def table(report: dict[str, Any]) -> str:
    if "local" not in report:  # --worker-only
        return "\n".join(_worker_lines(report["worker"]))
    lines = [(f"{'bytes':>10} {'clients':>7} {'uploads/s':>9} {'MB/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'server us':>10} {'s3 us':>9}  (CPU per upload; median of {report['rounds']} rounds)")]
    for run in report["local"]["runs"]:
        cpu = run["cpu_us_per_upload"]
        lines.append(f"{run['bytes']:>10} {run['clients']:>7} {run['uploads_per_s']:>9} {run['mb_per_s']:>7} "
                     f"{run['p50_ms']:>8} {run['p99_ms']:>8} {cpu['server']:>10} {cpu['s3_store']:>9}")
    memory = report["local"]["memory"]
    lines.append(f"local server, {memory['bytes']}-byte uploads: idle RSS {memory['idle_rss_bytes_rounds']}")
    for run in ("sequential", "concurrent"):
        if run in memory:
            clients = memory[run]["clients"]
            lines.append(f"  {run} ({clients} client{'s' if clients != 1 else ''}): peak RSS growth "
                         f"{memory[run]['growth_bytes_rounds']} = {memory[run]['copies_per_upload']} copies per upload")
    lines.extend(_worker_lines(report["worker"]))
    for part in report["header_check"]:
        lines.append(f"header check, {part['bytes']} bytes: read_header {part['read_header_us']} us "
                     f"({part['read_header_share_of_upload_p50']:.4%} of the one-client p50), "
                     f"sha256 {part['sha256_us']} us")
    return "\n".join(lines)


def _worker_lines(worker: dict[str, Any]) -> list[str]:
    lines = []
    for name in ("one", "concurrent"):
        if worker[name]:
            w = worker[name]
            busy = f", {w['refused_busy']} answered 503 unread (the upload budget)" if w["refused_busy"] else ""
            lines.append(f"Worker entry, {w['uploads']} x {worker['bytes']} bytes at once{busy}: Python peak "
                         f"{w['python_peak_bytes']} ({w['python_peak_copies_per_upload']} copies per upload taken), "
                         f"isolate estimate {w['isolate_estimate_bytes']} = {w['share_of_limit']:.0%} of "
                         f"{worker['limit_bytes']}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
