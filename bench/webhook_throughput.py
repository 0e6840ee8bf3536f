"""Webhook throughput of the local service next to a baseline measured in the same run.

Baseline: the same stack (uvicorn, one worker process, an ASGI app over SQLite in WAL mode)
answering 200 after one SQLite INSERT. Service: `python -m service.local_server` applying real
RunPod deliveries (half COMPLETED with one result object checked in the S3 store, half FAILED),
each sent twice, as RunPod's retries do (the second copy is a duplicate), shuffled.
Load: several client processes, each with a few keep-alive connections, on loopback.

    .venv/bin/python bench/webhook_throughput.py [--jobs 2000] [--procs 2] [--conns 4]

Prints one JSON object: webhooks/s and p50/p99 latency (ms) for both, and the ratio
service/baseline (target >= 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "bench-webhook-secret-0123456789"
TOKEN = "bench-api-token-0123456789abcdef"
BUCKET = "bench-results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port_file(path: Path, proc: subprocess.Popen, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server did not start (exit {proc.poll()}); see its log")
        time.sleep(0.05)
    return int(path.read_text())


# ---- baseline server: same uvicorn stack, one INSERT, 200 ------------------------------------

def serve_baseline(db_path: str, port_file: str) -> None:
    import uvicorn

    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, path TEXT, body BLOB)")

    async def app(scope, receive, send):
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        conn.execute("INSERT INTO hits (path, body) VALUES (?, ?)", (scope["path"], body))
        payload = b'{"applied":true,"reason":"applied","status":"completed"}'
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # as service.local_server
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", log_level="warning",
                            server_header=False, date_header=False)
    server = uvicorn.Server(config)
    Path(port_file).write_text(str(sock.getsockname()[1]))
    asyncio.run(server.serve(sockets=[sock]))


# ---- load generator ---------------------------------------------------------------------------

def _connection_worker(port: int, requests: list[tuple[str, bytes]], out: list[float], errors: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for path, body in requests:
        started = time.perf_counter()
        conn.request("POST", path, body, {"content-type": "application/json"})
        reply = conn.getresponse()
        reply.read()
        out.append(time.perf_counter() - started)
        if reply.status != 200:
            errors.append(reply.status)


def _load_process(port: int, requests: list[tuple[str, bytes]], conns: int, queue: multiprocessing.Queue) -> None:
    latencies: list[float] = []
    errors: list[int] = []
    threads = [threading.Thread(target=_connection_worker, args=(port, requests[i::conns], latencies, errors))
               for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((latencies, errors))


def drive(port: int, requests: list[tuple[str, bytes]], procs: int, conns: int) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_load_process, args=(port, requests[i::procs], conns, queue))
               for i in range(procs)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    elapsed = time.perf_counter() - started
    for w in workers:
        w.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = [e for _, errs in results for e in errs]

    def pct(p: int) -> float:
        return round(latencies[max(0, -(-p * len(latencies) // 100) - 1)] * 1000, 2)

    return {"requests": len(latencies), "errors": len(errors), "seconds": round(elapsed, 3),
            "webhooks_per_s": round(len(latencies) / elapsed, 1), "p50_ms": pct(50), "p99_ms": pct(99)}


# ---- set-up -------------------------------------------------------------------------------------

def prepare(tmp: Path, jobs: int, s3_endpoint: str, completed_every: int) -> list[tuple[str, bytes]]:
    import boto3
    from botocore.config import Config

    from service import jobs as job_table
    from service.migrate import apply_sqlite
    from service.signing import webhook_signature
    from service.sqlite_database import SqliteDatabase

    db_path = tmp / "service.sqlite"
    conn = sqlite3.connect(db_path, isolation_level=None)
    apply_sqlite(conn, ROOT / "migrations")
    conn.close()
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="bench", aws_secret_access_key="bench",
                      region_name="us-east-1", config=Config(request_checksum_calculation="when_required",
                                                             s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket=BUCKET)
    db = SqliteDatabase(db_path)
    now = time.time()
    requests: list[tuple[str, bytes]] = []

    async def fill() -> None:
        for i in range(jobs):
            job_id = uuid.uuid4().hex
            await job_table.insert(db, job_table.NewJob(job_id, "bench", "sdxl-txt2img", "sdxl-txt2img@1.0.0",
                                                        {"prompt": "x"}, uuid.uuid4().hex, now, "bench@sha256:x"))
            rid = f"rp-{job_id}"
            await job_table.record_runpod_id(db, job_id, rid, now)
            if completed_every and i % completed_every == 0:
                key = f"results/{job_id}/0.png"
                s3.put_object(Bucket=BUCKET, Key=key, Body=b"\x89PNG" + b"x" * 2000, ContentType="image/png")
                payload = {"id": rid, "status": "COMPLETED", "delayTime": 900, "executionTime": 2300,
                           "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 2004}],
                                      "gpu_type": "NVIDIA GeForce RTX 4090", "worker_image_tag": "bench@sha256:x"}}
            else:
                payload = {"id": rid, "status": "FAILED", "delayTime": 900, "executionTime": 1100,
                           "error": "CUDA out of memory"}
            path = f"/api/runpod/webhook?job={job_id}&sig={webhook_signature(SECRET, job_id)}"
            requests.extend([(path, json.dumps(payload).encode())] * 2)  # RunPod's retry: a duplicate

    asyncio.run(fill())
    db.close()
    random.Random(1).shuffle(requests)
    return requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--conns", type=int, default=4)
    parser.add_argument("--completed-every", type=int, default=2,
                        help="every Nth job COMPLETED (one store check), the rest FAILED; 0 = all FAILED")
    parser.add_argument("--serve-baseline", nargs=2, metavar=("DB", "PORT_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(*args.serve_baseline)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="gg-bench-"))
    moto_port = free_port()
    moto = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p",
                             str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs: list[subprocess.Popen] = [moto]
    try:
        s3_endpoint = f"http://127.0.0.1:{moto_port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", moto_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        requests = prepare(tmp, args.jobs, s3_endpoint, args.completed_every)

        base_proc = subprocess.Popen([sys.executable, __file__, "--serve-baseline", str(tmp / "baseline.sqlite"),
                                      str(tmp / "baseline.port")], stdout=subprocess.DEVNULL)
        procs.append(base_proc)
        base_port = wait_port_file(tmp / "baseline.port", base_proc)
        drive(base_port, requests[:200], 1, 2)  # warm-up
        baseline = drive(base_port, requests, args.procs, args.conns)
        base_proc.terminate()
        base_proc.wait()

        config = {"stack": "bench", "api_token": TOKEN, "webhook_secret": SECRET, "runpod_api_key": "bench-runpod-key",
                  "runpod_endpoint_base": "http://127.0.0.1:9/v2/none", "public_base_url": "http://127.0.0.1:1",
                  "workflows_dir": str(ROOT / "tests" / "service" / "fixtures" / "workflows"),
                  "db_path": str(tmp / "service.sqlite"), "s3_endpoint_url": s3_endpoint, "s3_bucket": BUCKET,
                  "s3_access_key_id": "bench", "s3_secret_access_key": "bench", "host": "127.0.0.1", "port": 0}
        (tmp / "service.json").write_text(json.dumps(config))
        os.chmod(tmp / "service.json", 0o600)
        with (tmp / "service.log").open("w") as log:
            profile = ["-m", "cProfile", "-o", os.environ["GG_BENCH_PROFILE"]] if os.environ.get("GG_BENCH_PROFILE") else []
            svc_proc = subprocess.Popen([sys.executable, *profile, "-m", "service.local_server", "--config",
                                         str(tmp / "service.json"), "--port-file", str(tmp / "service.port")],
                                        cwd=ROOT, stdout=log)
            procs.append(svc_proc)
            svc_port = wait_port_file(tmp / "service.port", svc_proc)
            service = drive(svc_port, requests, args.procs, args.conns)
            svc_proc.terminate()
            svc_proc.wait()
        conn = sqlite3.connect(tmp / "service.sqlite")
        settled = conn.execute("SELECT COUNT(*) FROM job_metrics").fetchone()[0]
        conn.close()
        report = {"jobs": args.jobs, "deliveries": len(requests), "client_processes": args.procs,
                  "connections_per_process": args.conns, "baseline": baseline, "service": service,
                  "ratio": round(service["webhooks_per_s"] / baseline["webhooks_per_s"], 3),
                  "service_jobs_settled": settled, "target_ratio": 0.5}
        print(json.dumps(report, indent=2))
        return 0 if service["errors"] == 0 and settled == args.jobs else 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
