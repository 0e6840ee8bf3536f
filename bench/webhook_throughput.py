"""Webhook throughput of the local service next to a baseline measured in the same run.

Baseline: the same stack (uvicorn, one worker process, an ASGI app over SQLite in WAL mode)
answering 200 after one SQLite INSERT. Service: `python -m service.local_server` applying real
RunPod deliveries (half COMPLETED with one result object checked in the S3 store, half FAILED),
each sent twice, as RunPod's retries do (the second copy is a duplicate), shuffled.
Floor: the same stack doing only what the webhook's invariants cost in SQL: the signature, the
payload, and the service's own transition statements (transitions.READ_JOB, then
transitions.write_statements as one batch through the service's SqliteDatabase, group commit)
on a copy of the same database. No store check, no logs, no routing, no error shaping: the
fastest the service's own code path (the one D1 runs: read, then a compare-and-set batch) can be.
Grouped floor: the same SQL in the fastest shape SQLite allows and D1 does not (D1 has no
interactive transactions): every delivery of one event-loop turn read, decided and written inside
one BEGIN IMMEDIATE transaction, one hand-off per request. The local service does not take this
shape: it runs the transition code D1 runs, so the local target tests what production executes.
Parts: the floor's pieces timed bare in the bench's own process (request handling, the transition's
SQL with commit groups of 1 and 8, the baseline's INSERT), and from them `parts_bound_ratio`: the
ratio a server would reach if it cost no more than the baseline's HTTP handling plus those parts.
Load: several client processes, each driving a few keep-alive connections from one thread with
a selector and prebuilt requests (~20 us of client CPU per request, so the server sets the pace;
the earlier http.client-in-threads client cost ~100 us and held the baseline at half its speed).
All servers get the same warm-up and the same uvicorn settings (service.local_server.UVICORN_SETTINGS, served
over the service's own protocol, EdgeProtocol).
Rounds: the machine's speed drifts from one server's slot to the next (one run's baseline alone moved by a
quarter), so the bench measures every server once per round (`--rounds`, default 3), the order rotated each
round so no server always runs first or last, each server with its own fresh copy of the unsettled jobs.
Each ratio is the median of the per-round ratios (that round's server over that round's baseline), and each
server's figures are its median round's. With `--rounds 1` the baseline also runs last and the round uses
the faster of its two runs (noise never flatters the service), as the bench did before it had rounds.
`--rounds 3 --completed-every 0` took 40 to 43 s on a 2-core machine (2026-12-01).
GG_BENCH_PYSPY=out.txt records a py-spy profile (raw format) of the service during its first round's run.

    .venv/bin/python bench/webhook_throughput.py [--jobs 3000] [--procs 2] [--conns 4] [--completed-every 2]
                                                 [--rounds 3]

Prints one JSON object: webhooks/s, p50/p99 latency (ms) and CPU per request of each process for each
server (its median round by webhooks/s, the lower middle one of an even count, with every round's
webhooks/s in `webhooks_per_s_rounds` and server CPU per request in `server_cpu_us_rounds`: compare servers
by CPU per request when other work shares the machine), the ratios service/baseline (the target: >= 0.5),
floor/baseline, floor_grouped/baseline and service/floor (each the median of its `*_rounds` list), each round's order,
the parts (CPU microseconds per delivery) and parts_bound_ratio. It exits 1 when any round of the floors
or the service saw an error or left a job unsettled.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import multiprocessing
import os
import random
import resource
import selectors
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.signing import webhook_signature
from service.sqlite_database import SqliteDatabase
from service.transitions import READ_JOB, Pricing, parse_delivery, write_statements

SECRET = "bench-webhook-secret-0123456789"
TOKEN = "bench-api-token-0123456789abcdef"
BUCKET = "bench-results"
# Secrets unlike any other value in a log line: the service masks each one it finds there, and a secret
# equal to the stack's name ("bench") would send every line down that slower path.
S3_KEY_ID, S3_SECRET = "bench-s3-key-id-4f1c", "bench-s3-secret-9d2e7a"


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


# ---- plain servers: the same uvicorn stack as the service, a bare ASGI app --------------------

Answer = tuple[int, bytes]


def serve_plain(handle: Any, port_file: str) -> None:
    """Serves `await handle(scope, body) -> (status, JSON bytes)` with the service's uvicorn settings."""
    import uvicorn

    from service.local_server import UVICORN_SETTINGS, edge_protocol, listening_socket
    from service.logs import Logger

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
        status, payload = await handle(scope, body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    sock = listening_socket("127.0.0.1", 0)
    # The service's own protocol (EdgeProtocol: its header limits and deadlines, one write per answer), so every
    # server runs one stack.
    config = uvicorn.Config(app, **{**UVICORN_SETTINGS, "http": edge_protocol(Logger(lambda _line: None))})
    server = uvicorn.Server(config)
    # Written whole, then renamed into place: the bench waits for the file and reads it at once, and a file it
    # could see created but not yet written would read as no port.
    Path(f"{port_file}.tmp").write_text(str(sock.getsockname()[1]))
    os.replace(f"{port_file}.tmp", port_file)
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:  # as service.local_server
        runner.run(server.serve(sockets=[sock]))


def serve_baseline(db_path: str, port_file: str) -> None:
    """The baseline: one INSERT, then 200."""
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, path TEXT, body BLOB)")

    async def handle(scope: dict, body: bytes) -> Answer:
        conn.execute("INSERT INTO hits (path, body) VALUES (?, ?)", (scope["path"], body))
        return 200, b'{"applied":true,"reason":"applied","status":"completed"}'

    serve_plain(handle, port_file)


def _transition_sql(job: dict, delivery: Any, fingerprint: str, now_s: float, pricing: Any) -> list:
    """The floor's writes for one delivery, after READ_JOB: none for a delivery already seen, else
    transitions.write_statements (the store check passes, as it does for every bench result)."""
    if job["seen"] or job["last_delivery"] == fingerprint:
        return []
    images = delivery.output.get("images") if isinstance(delivery.output, dict) else None
    checked = (delivery.status, None if delivery.status == "completed" else "failed", images)
    return write_statements(job, delivery, fingerprint, "webhook", checked, now_s, pricing)


def _parse(query_string: str, body: bytes) -> tuple[str, Any, str] | None:
    """(job id, delivery, fingerprint), or None for a bad signature: the floor's request handling."""
    query = dict(pair.split("=", 1) for pair in query_string.split("&"))
    job_id = query["job"]
    if not hmac.compare_digest(webhook_signature(SECRET, job_id), query["sig"]):
        return None
    delivery = parse_delivery(json.loads(body))
    return job_id, delivery, delivery.fingerprint(job_id)


def serve_floor(db_path: str, port_file: str) -> None:
    """The floor: the transition's own SQL (READ_JOB, then write_statements as one batch), nothing else."""
    db = SqliteDatabase(db_path)
    pricing = Pricing(None, 1, None, None)

    async def handle(scope: dict, body: bytes) -> Answer:
        parsed = _parse(scope["query_string"].decode(), body)
        if parsed is None:
            return 401, b'{"error":"bad_signature"}'
        job_id, delivery, fingerprint = parsed
        job = (await db.query(READ_JOB, (fingerprint, job_id)))[0]
        statements = _transition_sql(job, delivery, fingerprint, time.time(), pricing)
        applied = bool(statements) and (await db.batch(statements))[0].changes == 1
        return 200, json.dumps({"applied": applied, "reason": "applied" if applied else "duplicate",
                                "status": delivery.status}).encode()

    try:
        serve_plain(handle, port_file)
    finally:
        db.close()


def serve_floor_grouped(db_path: str, port_file: str) -> None:
    """The grouped floor: the floor's SQL in the shape SQLite runs fastest and D1 cannot run at all.
    Every delivery that arrived in one turn of the event loop is read, decided and written inside
    one BEGIN IMMEDIATE transaction (no compare-and-set round trip, one hand-off per request)."""
    db = SqliteDatabase(db_path)  # the service's pragmas and checkpointer; its group commit is bypassed
    conn, pricing = db.conn, Pricing(None, 1, None, None)
    pending: list[tuple[str, Any, str, asyncio.Future]] = []

    def settle() -> None:
        group, now = pending[:], time.time()
        pending.clear()
        applied = []
        conn.execute("BEGIN IMMEDIATE")
        for job_id, delivery, fingerprint, _ in group:
            job = dict(zip(*_columns_and_row(conn, READ_JOB, (fingerprint, job_id))))
            statements = _transition_sql(job, delivery, fingerprint, now, pricing)
            changed = bool(statements) and conn.execute(statements[0].sql, statements[0].params).rowcount == 1
            for statement in statements[1:]:
                conn.execute(statement.sql, statement.params)
            applied.append(changed)
        conn.execute("COMMIT")
        for (*_, future), changed in zip(group, applied):
            future.set_result(changed)

    async def handle(scope: dict, body: bytes) -> Answer:
        parsed = _parse(scope["query_string"].decode(), body)
        if parsed is None:
            return 401, b'{"error":"bad_signature"}'
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        pending.append((*parsed, future))
        if len(pending) == 1:
            loop.call_soon(settle)
        applied = await future
        return 200, json.dumps({"applied": applied, "reason": "applied" if applied else "duplicate",
                                "status": parsed[1].status}).encode()

    try:
        serve_plain(handle, port_file)
    finally:
        db.close()


SERVE_MODES = {"baseline": "serve_baseline", "floor": "serve_floor", "floor_grouped": "serve_floor_grouped"}


def parts_cost(tmp: Path, requests: Requests, groups: tuple[int, ...]) -> dict:
    """CPU per delivery of the floor's parts run bare, in this process, with no server around them:
    the request handling (_parse and the JSON answer), the baseline's INSERT (autocommit, as
    serve_baseline), and the transition's SQL on the service's own connection (READ_JOB per
    delivery, then each group's writes in one transaction, with the passive checkpoint every 64
    commits that SqliteDatabase runs) for each commit group size in `groups`, each on a fresh
    copy of the unsettled jobs."""
    pricing = Pricing(None, 1, None, None)
    start = time.process_time()
    parsed = [_parse(path.split("?", 1)[1], body) for path, body in requests]
    for _ in parsed:
        json.dumps({"applied": True, "reason": "applied", "status": "failed"}).encode()
    report = {"request_handling": round((time.process_time() - start) * 1e6 / len(requests), 1)}

    conn = sqlite3.connect(tmp / "parts-baseline.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, path TEXT, body BLOB)")
    start = time.process_time()
    for path, body in requests:
        conn.execute("INSERT INTO hits (path, body) VALUES (?, ?)", (path, body))
    report["baseline_insert"] = round((time.process_time() - start) * 1e6 / len(requests), 1)
    conn.close()

    for group in groups:
        copy = tmp / f"parts-{group}.sqlite"
        copy_database(tmp / "jobs.sqlite", copy)
        db = SqliteDatabase(copy)  # the service's pragmas; its group commit is bypassed
        conn, commits, now = db.conn, 0, time.time()
        try:
            start = time.process_time()
            for at in range(0, len(parsed), group):
                writes = []
                for job_id, delivery, fingerprint in parsed[at:at + group]:  # type: ignore[misc]
                    job = dict(zip(*_columns_and_row(conn, READ_JOB, (fingerprint, job_id))))
                    writes.extend(_transition_sql(job, delivery, fingerprint, now, pricing))
                if writes:
                    conn.execute("BEGIN IMMEDIATE")
                    for statement in writes:
                        conn.execute(statement.sql, statement.params)
                    conn.execute("COMMIT")
                    commits += 1
                    if commits % 64 == 0:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            report[f"transition_sql_group_{group}"] = round((time.process_time() - start) * 1e6 / len(parsed), 1)
        finally:
            db.close()
    return report


def parts_bound(baseline: dict, parts: dict) -> float:
    """The best ratio any server on this stack could reach with these invariants, if it cost no more
    than its parts: the baseline's HTTP handling (its server CPU per request less its INSERT), the
    request handling and the transition's SQL in the largest commit groups; no logs, no routing, no
    event-loop hand-offs. Both servers are CPU-bound on one core, so throughput is 1 / CPU per request."""
    request = baseline["cpu_us_per_request"]["server"]
    sql = min(v for k, v in parts.items() if k.startswith("transition_sql_group_"))
    return round(request / (request - parts["baseline_insert"] + parts["request_handling"] + sql), 3)


def _columns_and_row(conn: sqlite3.Connection, sql: str, params: tuple) -> tuple[list[str], tuple]:
    cursor = conn.execute(sql, params)
    return [d[0] for d in cursor.description], cursor.fetchone()


# ---- load generator ---------------------------------------------------------------------------

class _Connection:
    """One keep-alive connection sending prebuilt requests one at a time (no pipelining)."""

    def __init__(self, port: int, requests: list[bytes]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = iter(requests)
        self.buffer = bytearray()
        self.started = 0.0

    def send_next(self) -> bool:
        request = next(self.pending, None)
        if request is None:
            return False
        self.started = time.perf_counter()
        self.sock.sendall(request)
        return True

    def read_reply(self) -> int | None:
        """The reply's status once it is complete, else None (call again when readable)."""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed a keep-alive connection")
        self.buffer += chunk
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = bytes(self.buffer[:head_end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            raise ConnectionError("reply without content-length")
        length = int(head[at + 17:].split(b"\r\n", 1)[0])
        if len(self.buffer) < head_end + 4 + length:
            return None
        status = int(self.buffer[9:12])
        del self.buffer[:head_end + 4 + length]
        return status


def _load_process(port: int, requests: list[bytes], conns: int, ready: Any, go: Any, queue: Any) -> None:
    """`conns` connections driven from one thread with a selector: a lean client (a few tens of
    microseconds per request), so the server under test, not the load generator, sets the pace."""
    if CPUS["clients"]:
        os.sched_setaffinity(0, CPUS["clients"])
    connections = [_Connection(port, requests[i::conns]) for i in range(conns)]
    latencies: list[float] = []
    errors: list[int] = []
    ready.wait(timeout=60)
    go.wait()
    first = time.perf_counter()
    with selectors.DefaultSelector() as selector:
        for c in connections:
            if c.send_next():
                selector.register(c.sock, selectors.EVENT_READ, c)
        while selector.get_map():
            for key, _ in selector.select():
                c = key.data
                status = c.read_reply()
                if status is None:
                    continue
                latencies.append(time.perf_counter() - c.started)
                if status != 200:
                    errors.append(status)
                if not c.send_next():
                    selector.unregister(c.sock)
    last = time.perf_counter()
    for c in connections:
        c.sock.close()
    queue.put((first, last, latencies, errors))


# CPUs the load generator and the servers may run on (--client-cpus / --server-cpus); empty = any.
CPUS: dict[str, set[int]] = {"clients": set(), "servers": set()}


def _on_server_cpus(proc: subprocess.Popen) -> subprocess.Popen:
    """Pins a just-started server (or the S3 store) to the server CPUs. It is still importing, so
    every thread it starts later inherits the mask from its main thread."""
    if CPUS["servers"]:
        os.sched_setaffinity(proc.pid, CPUS["servers"])
    return proc


def _cpu_s(pid: int) -> float:
    """utime + stime of a live process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(port: int, requests: list[tuple[str, bytes]], procs: int, conns: int,
          watch: dict[str, int] | None = None) -> dict:
    """Send `requests` from `procs` client processes x `conns` connections; report throughput,
    latency and the CPU each party spent per request (clients, and each process in `watch`)."""
    watch = watch or {}
    wire = [f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n".encode() + body for path, body in requests]
    ready = multiprocessing.Barrier(procs + 1)  # every client connected: start-up is not measured
    go = multiprocessing.Event()
    queue: multiprocessing.Queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_load_process, args=(port, wire[i::procs], conns, ready, go, queue))
               for i in range(procs)]
    for w in workers:
        w.start()
    ready.wait(timeout=60)
    cpu_before = {name: _cpu_s(pid) for name, pid in watch.items()}
    clients_before = sum(_cpu_s(w.pid) for w in workers)  # type: ignore[arg-type]
    go.set()
    results = [queue.get() for _ in workers]
    cpu = {name: _cpu_s(pid) - cpu_before[name] for name, pid in watch.items()}
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for w in workers:
        w.join()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu["clients"] = (children_after.ru_utime + children_after.ru_stime - children_before.ru_utime
                      - children_before.ru_stime - clients_before)
    elapsed = max(r[1] for r in results) - min(r[0] for r in results)
    results = [(lat, errs) for _, _, lat, errs in results]
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = [e for _, errs in results for e in errs]

    def pct(p: int) -> float:
        return round(latencies[max(0, -(-p * len(latencies) // 100) - 1)] * 1000, 2)

    return {"requests": len(latencies), "errors": len(errors), "seconds": round(elapsed, 3),
            "webhooks_per_s": round(len(latencies) / elapsed, 1), "p50_ms": pct(50), "p99_ms": pct(99),
            "cpu_us_per_request": {name: round(s * 1e6 / len(latencies), 1) for name, s in cpu.items()}}


# ---- set-up -------------------------------------------------------------------------------------

Requests = list[tuple[str, bytes]]


def prepare(tmp: Path, jobs: int, warmup_jobs: int, s3_endpoint: str, completed_every: int
            ) -> tuple[Requests, Requests]:
    """(warm-up deliveries, measured deliveries): distinct jobs, the same mix, each delivery twice."""
    import boto3
    from botocore.config import Config

    from service import jobs as job_table
    from service.migrate import apply_sqlite

    db_path = tmp / "jobs.sqlite"  # never served: every floor and service run gets a fresh copy
    conn = sqlite3.connect(db_path, isolation_level=None)
    apply_sqlite(conn, ROOT / "migrations")
    conn.close()
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET,
                      region_name="us-east-1", config=Config(request_checksum_calculation="when_required",
                                                             s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket=BUCKET)
    db = SqliteDatabase(db_path)
    now = time.time()
    requests: Requests = []

    async def fill() -> None:
        for i in range(warmup_jobs + jobs):
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
    warmup, measured = requests[:2 * warmup_jobs], requests[2 * warmup_jobs:]
    random.Random(1).shuffle(warmup)
    random.Random(2).shuffle(measured)
    return warmup, measured


def run_plain(tmp: Path, mode: str, name: str, warmup: Requests, requests: Requests, procs: int, conns: int
              ) -> dict:
    """A plain server (`mode`: baseline, floor or floor_grouped) on tmp/<name>.sqlite."""
    proc = _on_server_cpus(subprocess.Popen([sys.executable, __file__, "--serve", mode, str(tmp / f"{name}.sqlite"),
                                             str(tmp / f"{name}.port")], stdout=subprocess.DEVNULL))
    try:
        port = wait_port_file(tmp / f"{name}.port", proc)
        drive(port, warmup, procs, conns)
        return drive(port, requests, procs, conns, {"server": proc.pid})
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _settled(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM job_metrics").fetchone()[0]
    finally:
        conn.close()


def copy_database(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def run_service(tmp: Path, name: str, s3_endpoint: str, moto_pid: int, warmup: Requests, requests: Requests,
                procs: int, conns: int, profile: bool) -> dict:
    """The service on tmp/<name>.sqlite, logging to tmp/<name>.log; `profile`: py-spy if GG_BENCH_PYSPY."""
    config = {"stack": "bench", "api_token": TOKEN, "webhook_secret": SECRET, "runpod_api_key": "bench-runpod-key",
              "runpod_endpoint_base": "http://127.0.0.1:9/v2/none", "public_base_url": "http://127.0.0.1:1",
              "workflows_dir": str(ROOT / "tests" / "service" / "fixtures" / "workflows"),
              "db_path": str(tmp / f"{name}.sqlite"), "s3_endpoint_url": s3_endpoint, "s3_bucket": BUCKET,
              "s3_access_key_id": S3_KEY_ID, "s3_secret_access_key": S3_SECRET, "host": "127.0.0.1", "port": 0}
    (tmp / f"{name}.json").write_text(json.dumps(config))
    os.chmod(tmp / f"{name}.json", 0o600)
    with (tmp / f"{name}.log").open("w") as log:
        argv = [sys.executable, "-m", "service.local_server", "--config", str(tmp / f"{name}.json"),
                "--port-file", str(tmp / f"{name}.port")]
        proc = _on_server_cpus(subprocess.Popen(argv, cwd=ROOT, stdout=log))
        spy = None
        try:
            port = wait_port_file(tmp / f"{name}.port", proc)
            drive(port, warmup, procs, conns)
            if profile and os.environ.get("GG_BENCH_PYSPY"):  # a sampling profile of the measured run
                spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--nonblocking", "--format", "raw",
                                        "-r", "1000", "--pid", str(proc.pid), "-o", os.environ["GG_BENCH_PYSPY"]],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)
            return drive(port, requests, procs, conns, {"server": proc.pid, "moto": moto_pid})
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            if spy is not None:
                spy.wait(timeout=60)


SERVERS = ("baseline", "floor", "floor_grouped", "service")


def round_order(index: int, rounds: int) -> list[str]:
    """The servers of round `index` (from 0): SERVERS rotated by `index`, so over the rounds each server
    takes each place. A lone round also runs the baseline last, bracketing the others."""
    shift = index % len(SERVERS)
    order = [*SERVERS[shift:], *SERVERS[:shift]]
    return order + ["baseline"] if rounds == 1 else order


def median_round(runs: list[dict]) -> dict:
    """The median run by webhooks_per_s (of an even count, the lower middle one: a round that happened),
    with every round's webhooks_per_s and server CPU per request in round order."""
    middle = sorted(runs, key=lambda run: run["webhooks_per_s"])[(len(runs) - 1) // 2]
    # Every round's server CPU too: the machine's load moves it from round to round, and only all of them say how much.
    return {**middle, "webhooks_per_s_rounds": [run["webhooks_per_s"] for run in runs],
            "server_cpu_us_rounds": [run["cpu_us_per_request"]["server"] for run in runs]}


def ratio_rounds(rounds: list[dict[str, dict]], top: str, bottom: str) -> tuple[float, list[float]]:
    """(the median of the per-round ratios, the per-round ratios): `top` over `bottom` of the same round,
    so the machine's drift between rounds cancels out."""
    each = [round(r[top]["webhooks_per_s"] / r[bottom]["webhooks_per_s"], 3) for r in rounds]
    return round(statistics.median(each), 3), each


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])  # the first paragraph, whole
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--warmup-jobs", type=int, default=200)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--conns", type=int, default=4)
    parser.add_argument("--completed-every", type=int, default=2,
                        help="every Nth job COMPLETED (one store check), the rest FAILED; 0 = all FAILED")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measure every server this many times, the order rotated each round; the "
                             "ratios are the medians of the per-round ratios (1 = one pass, the baseline "
                             "first and last)")
    parser.add_argument("--client-cpus", default="", help="pin the load generator to these CPUs (e.g. 1)")
    parser.add_argument("--server-cpus", default="", help="pin the servers and the S3 store to these CPUs (e.g. 0)")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the service log afterwards")
    parser.add_argument("--serve", nargs=3, metavar=("MODE", "DB", "PORT_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        mode, db, port_file = args.serve
        globals()[SERVE_MODES[mode]](db, port_file)
        return 0
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: give a whole number of at least 1 (3 is the default)")

    for role in CPUS:
        CPUS[role] = {int(c) for c in getattr(args, f"{role[:-1]}_cpus").split(",") if c.strip()}
    # Databases and logs (72 MB for --rounds 3 --completed-every 0), removed at the end.
    tmp = Path(tempfile.mkdtemp(prefix="gg-bench-"))
    try:
        return _bench(args, tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _bench(args: argparse.Namespace, tmp: Path) -> int:
    moto_port = free_port()
    moto = _on_server_cpus(subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1",
                                             "-p", str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        s3_endpoint = f"http://127.0.0.1:{moto_port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", moto_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        warmup, requests = prepare(tmp, args.jobs, args.warmup_jobs, s3_endpoint, args.completed_every)
        parts = parts_cost(tmp, requests, (1, 8))
        rounds: list[dict[str, dict]] = []
        orders: list[list[str]] = []
        baseline_runs: list[float] = []
        settled: dict[str, list[int]] = {"service": [], "floor": [], "floor_grouped": []}
        for index in range(args.rounds):
            orders.append(round_order(index, args.rounds))
            runs: dict[str, list[dict]] = {}
            for server in orders[-1]:
                name = f"{server.replace('_', '-')}-{index + 1}"
                if server == "baseline":
                    name += f"-{len(runs.get(server, [])) + 1}"  # a lone round runs it twice
                else:  # the same jobs, not yet settled: a fresh copy for each run
                    copy_database(tmp / "jobs.sqlite", tmp / f"{name}.sqlite")
                if server == "service":
                    run = run_service(tmp, name, s3_endpoint, moto.pid, warmup, requests, args.procs,
                                      args.conns, profile=index == 0)
                else:
                    run = run_plain(tmp, server, name, warmup, requests, args.procs, args.conns)
                runs.setdefault(server, []).append(run)
                if server in settled:
                    settled[server].append(_settled(tmp / f"{name}.sqlite"))
            baseline_runs += [run["webhooks_per_s"] for run in runs["baseline"]]
            # Of two baseline runs (a lone round), the faster: noise never flatters the service.
            rounds.append({server: max(runs[server], key=lambda r: r["webhooks_per_s"])
                           for server in SERVERS})
        baseline, floor, grouped, service = (median_round([r[server] for r in rounds]) for server in SERVERS)
        ratio, ratios = ratio_rounds(rounds, "service", "baseline")
        floor_ratio, floor_ratios = ratio_rounds(rounds, "floor", "baseline")
        grouped_ratio, grouped_ratios = ratio_rounds(rounds, "floor_grouped", "baseline")
        to_floor, to_floor_rounds = ratio_rounds(rounds, "service", "floor")
        report = {"jobs": args.jobs, "deliveries": len(requests), "completed_every": args.completed_every,
                  "client_processes": args.procs, "connections_per_process": args.conns,
                  "rounds": args.rounds, "round_orders": orders,
                  "baseline": baseline, "baseline_runs_per_s": baseline_runs,
                  "floor": floor, "floor_grouped": grouped, "service": service,
                  "ratio": ratio, "ratio_rounds": ratios,
                  "floor_ratio": floor_ratio, "floor_ratio_rounds": floor_ratios,
                  "floor_grouped_ratio": grouped_ratio, "floor_grouped_ratio_rounds": grouped_ratios,
                  "service_to_floor": to_floor, "service_to_floor_rounds": to_floor_rounds,
                  "service_jobs_settled": min(settled["service"]), "jobs_settled_rounds": settled,
                  "target_ratio": 0.5,
                  "parts_cpu_us_per_delivery": parts, "parts_bound_ratio": parts_bound(baseline, parts)}
        print(json.dumps(report, indent=2))
        every_job = args.jobs + args.warmup_jobs
        clean = all(run["errors"] == 0 for r in rounds for server, run in r.items() if server != "baseline")
        return 0 if clean and all(n == every_job for counts in settled.values() for n in counts) else 1
    finally:
        moto.terminate()
        moto.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
