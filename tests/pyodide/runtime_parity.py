"""Runtime parity harness: the SAME scenario of requests, sent as raw HTTP/1.1 bytes to

  local: `python -m service.local_server` (uvicorn + EdgeProtocol, SQLite, moto S3), and
  cloud: the Worker's real upload (infra.worker_bundle) under real Pyodide in Node (`run_worker.mjs --serve`),
         D1 = sql.js over our migrations, R2 = the JS stand-in, fetch = Node's real fetch,

both calling one fake RunPod (/run, /status, /cancel) on loopback. Each step may name values captured by earlier
steps in the SAME runtime ({job1}, {rp1}, ...), so generated ids never need to line up. Every answer (status,
headers, body) and every log line a request printed is compared once ids, signatures and times are masked.

Usage: parity.py REPO [--pyodide pyodide|pyodide-py313] [--json OUT]
REPO needs tests/pyodide/node_modules and a run_worker.mjs with --serve.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.request import Request as UrlRequest
from urllib.request import urlopen

HOST = "api.example"
PUBLIC = f"https://{HOST}"
TOKEN = "tok-ParityApiToken-1f2e3d4c"
HOOK_SECRET = "whs-ParityWebhookSecret-5a6b7c"
RUNPOD_KEY = "rpk-ParityRunPodKey-8d9e0f"
S3_KEY, S3_SECRET, BUCKET = "AKIAPARITY", "s3s-ParitySecret-2b3c", "goldgate-results"
TAG = "local/worker@sha256:" + "a" * 64
PNG = bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + b"parity-image"
SETTINGS = {"stack": "staging", "workflow_version": "sdxl-txt2img@1.0.0", "worker_image_tag": TAG,
            "execution_timeout_ms": 600000, "ttl_ms": 86400000, "max_body_bytes": 65536, "signed_url_ttl_s": 3600,
            "gpu_type": "NVIDIA L4", "gpu_count": 1, "price_per_gpu_second": 0.0005}


def wait_for(check, what: str, timeout: float = 120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise TimeoutError(what)


# ------------------------------------------------------------------ fake RunPod (both runtimes call it)
class FakeRunPod:
    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}  # rid -> /status answer
        self.by_job: dict[str, str] = {}  # our job id -> rid
        self.mode = "accept"  # accept | busy | error | refuse
        self.calls: list[tuple[str, str, bytes]] = []  # (method, path, body) as each runtime sent them
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def reply(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                fake.calls.append(("POST", self.path, raw))
                if self.headers.get("authorization") != f"Bearer {RUNPOD_KEY}":
                    return self.reply(401, {"error": "Unauthorized"})
                if self.path.endswith("/run"):
                    if fake.mode == "busy":
                        return self.reply(429, {"error": "rate limited"}, {"retry-after": "7"})
                    if fake.mode == "error":
                        return self.reply(500, {"error": "internal"})
                    if fake.mode == "refuse":
                        return self.reply(400, {"error": "input invalid"})
                    rid = f"{uuid.uuid4()}-u1"
                    fake.jobs[rid] = {"id": rid, "status": "IN_QUEUE", "delayTime": 0}
                    fake.by_job[json.loads(raw)["input"]["job_id"]] = rid
                    return self.reply(200, {"id": rid, "status": "IN_QUEUE"})
                if "/cancel/" in self.path:
                    rid = self.path.rsplit("/", 1)[1]
                    if rid not in fake.jobs:
                        return self.reply(404, {"error": "request does not exist"})
                    fake.jobs[rid] = {"id": rid, "status": "CANCELLED", "delayTime": 5, "executionTime": 0}
                    return self.reply(200, {"id": rid, "status": "CANCELLED"})
                return self.reply(404, {"error": "not found"})

            def do_GET(self) -> None:
                fake.calls.append(("GET", self.path, b""))
                if self.headers.get("authorization") != f"Bearer {RUNPOD_KEY}":
                    return self.reply(401, {"error": "Unauthorized"})
                rid = self.path.rsplit("/", 1)[1]
                if "/status/" in self.path and rid in fake.jobs:
                    return self.reply(200, fake.jobs[rid])
                return self.reply(404, {"error": "request does not exist"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/v2/ep-parity"


# ------------------------------------------------------------------ the two runtimes
class Runtime:
    name = ""
    port = 0
    proc: subprocess.Popen[bytes]

    def put_object(self, key: str, data: bytes, ctype: str) -> None: ...
    def lines_since(self, n: int) -> list[str]: ...
    def line_count(self) -> int: ...

    def stop(self) -> None:
        """Stop the runtime's process: SIGTERM, then SIGKILL after 30 s."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Local(Runtime):
    name = "local"

    def __init__(self, repo: Path, scratch: Path, runpod_base: str) -> None:
        import boto3
        from botocore.config import Config
        from moto.server import ThreadedMotoServer

        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        self.s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET,
                               region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
        self.s3.create_bucket(Bucket=BUCKET)
        config = {**SETTINGS, "api_token": TOKEN, "webhook_secret": HOOK_SECRET, "runpod_api_key": RUNPOD_KEY,
                  "runpod_endpoint_base": runpod_base, "public_base_url": PUBLIC,
                  "workflows_dir": str(repo / "images" / "worker" / "workflows"), "host": "127.0.0.1", "port": 0,
                  "db_path": str(scratch / "local.sqlite"), "s3_endpoint_url": endpoint, "s3_bucket": BUCKET,
                  "s3_access_key_id": S3_KEY, "s3_secret_access_key": S3_SECRET,
                  "apply_migrations_from": str(repo / "migrations")}
        cfg = scratch / "service.json"
        cfg.write_text(json.dumps(config))
        cfg.chmod(0o600)
        self.log = scratch / "local.log"
        port_file = scratch / "local.port"
        env = {**os.environ, "PYTHONPATH": str(repo)}
        self.proc = subprocess.Popen([sys.executable, "-m", "service.local_server", "--config", str(cfg),
                                      "--port-file", str(port_file)], cwd=repo, env=env,
                                     stdout=self.log.open("wb"), stderr=(scratch / "local.err").open("wb"))
        try:
            self.port = int(wait_for(lambda: port_file.exists() and port_file.read_text().strip(), "local port"))
        except BaseException:  # run_both never got this runtime to stop: stop what it started here
            self.stop()
            raise

    def put_object(self, key: str, data: bytes, ctype: str) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=ctype)

    def _lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.strip()]

    def line_count(self) -> int:
        return len(self._lines())

    def lines_since(self, n: int) -> list[str]:
        return self._lines()[n:]

    def stop(self) -> None:
        super().stop()
        self.moto.stop()


class Cloud(Runtime):
    name = "cloud"

    def __init__(self, repo: Path, scratch: Path, runpod_base: str, pyodide: str) -> None:
        sys.path[:0] = [str(repo), str(repo / "tests" / "service"), str(repo / "tests" / "pyodide")]
        from worker_upload import upload_input

        env = {k.upper(): str(v) for k, v in SETTINGS.items()}
        env.update(API_TOKEN=TOKEN, WEBHOOK_SECRET=HOOK_SECRET, RUNPOD_API_KEY=RUNPOD_KEY,
                   RUNPOD_ENDPOINT_BASE=runpod_base, PUBLIC_BASE_URL=PUBLIC)
        upload = upload_input(**env)
        for key in list(upload["env"]):  # only the bindings infra/components/api.py would set for this config
            if key not in env and key not in ("RUNPOD_ENDPOINT_ID",):
                del upload["env"][key]
        path = scratch / "upload.json"
        path.write_text(json.dumps(upload))
        port_file = scratch / "cloud.port"
        self.proc = subprocess.Popen(["node", str(repo / "tests" / "pyodide" / "run_worker.mjs"), "--serve",
                                      str(port_file), str(path), pyodide],
                                     stdout=(scratch / "cloud.out").open("wb"), stderr=(scratch / "cloud.err").open("wb"))
        try:
            ports = wait_for(lambda: port_file.exists() and port_file.read_text().split(), "cloud ports", 300)
        except BaseException:  # run_both never got this runtime to stop: stop what it started here
            self.stop()
            raise
        self.port, self.admin = int(ports[0]), int(ports[1])

    def _admin(self, method: str, path: str, data: bytes | None = None, ctype: str = "") -> Any:
        req = UrlRequest(f"http://127.0.0.1:{self.admin}{path}", data=data, method=method,
                         headers={"content-type": ctype} if ctype else {})
        with urlopen(req, timeout=30) as reply:
            return json.loads(reply.read() or b"null")

    def put_object(self, key: str, data: bytes, ctype: str) -> None:
        self._admin("PUT", "/r2/" + key, data, ctype)

    def line_count(self) -> int:
        return self._admin("GET", "/printed?from=0")["total"]

    def lines_since(self, n: int) -> list[str]:
        return self._admin("GET", f"/printed?from={n}")["printed"]


# ------------------------------------------------------------------ raw HTTP
def send(port: int, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None) -> dict[str, Any]:
    import http.client

    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}", *(f"{k}: {v}" for k, v in headers)]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    wire = "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + (body or b"")
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(wire)
        reply = http.client.HTTPResponse(sock, method=method)
        reply.begin()
        data = reply.read()
        return {"status": reply.status, "headers": [(k.lower(), v) for k, v in reply.getheaders()], "body": data}


# ------------------------------------------------------------------ the scenario
AUTH = ("Authorization", f"Bearer {TOKEN}")
JSONCT = ("Content-Type", "application/json")


def create_body(prompt: str = "a lighthouse", **extra: Any) -> bytes:
    return json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": prompt}, **extra}).encode()


def completed(rid: str, key: str, size: int) -> bytes:
    return json.dumps({"id": rid, "status": "COMPLETED", "delayTime": 800, "executionTime": 2500,
                       "output": {"images": [{"key": key, "content_type": "image/png", "bytes": size,
                                              "sha256": hashlib.sha256(PNG).hexdigest(), "width": 8, "height": 8}],
                                  "timings": {"total_ms": 2500}, "workflow_version": "sdxl-txt2img@1.0.0",
                                  "gpu_type": "NVIDIA L4"}}).encode()


def scenario() -> list[dict[str, Any]]:
    """Steps: {label, method, target, headers, body, capture: {var: json path}, before: callable name}."""
    S: list[dict[str, Any]] = []

    def step(label, method, target, headers=(), body=None, **kw):
        S.append({"label": label, "method": method, "target": target, "headers": list(headers), "body": body, **kw})

    step("health", "GET", "/healthz")
    step("health HEAD", "HEAD", "/healthz")
    step("health POST", "POST", "/healthz", body=b"")
    step("workflows", "GET", "/api/workflows", [AUTH])
    step("workflows HEAD", "HEAD", "/api/workflows", [AUTH])
    step("workflows no auth", "GET", "/api/workflows")
    step("workflows bad token", "GET", "/api/workflows", [("Authorization", "Bearer nope")])
    step("create", "POST", "/api/queue/create", [AUTH, JSONCT], create_body(), capture={"job1": "job_id"})
    step("create NUL in value", "POST", "/api/queue/create", [AUTH, JSONCT], create_body("a\u0000b"))
    step("create NUL in key", "POST", "/api/queue/create", [AUTH, JSONCT],
         json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x", "ne\u0000g": "y"}}).encode())
    step("create NUL in workflow_id", "POST", "/api/queue/create", [AUTH, JSONCT],
         json.dumps({"workflow_id": "sdxl\u0000", "inputs": {"prompt": "x"}}).encode())
    step("create NUL nested", "POST", "/api/queue/create", [AUTH, JSONCT],
         json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": ["a\u0000"]}}).encode())
    step("create unknown workflow", "POST", "/api/queue/create", [AUTH, JSONCT],
         json.dumps({"workflow_id": "nope", "inputs": {}}).encode())
    step("create unknown field", "POST", "/api/queue/create", [AUTH, JSONCT], create_body(extra=1))
    step("create not json", "POST", "/api/queue/create", [AUTH, JSONCT], b"{")
    step("create array", "POST", "/api/queue/create", [AUTH, JSONCT], b"[]")
    step("create no auth", "POST", "/api/queue/create", [JSONCT], create_body())
    step("create GET", "GET", "/api/queue/create", [AUTH])
    step("create keyed", "POST", "/api/queue/create", [AUTH, JSONCT, ("Idempotency-Key", "parity-1")],
         create_body("k"), capture={"jobk": "job_id"})
    step("create keyed replay", "POST", "/api/queue/create", [AUTH, JSONCT, ("Idempotency-Key", "parity-1")],
         create_body("k"))
    step("create keyed reuse", "POST", "/api/queue/create", [AUTH, JSONCT, ("Idempotency-Key", "parity-1")],
         create_body("other"))
    step("create bad key", "POST", "/api/queue/create", [AUTH, JSONCT, ("Idempotency-Key", "a\\b")], create_body())
    step("create over limit", "POST", "/api/queue/create", [AUTH, JSONCT], create_body("x" * 70000))
    step("create runpod busy", "POST", "/api/queue/create", [AUTH, JSONCT], create_body("busy"), mode="busy")
    step("create runpod error", "POST", "/api/queue/create", [AUTH, JSONCT], create_body("err"), mode="error",
         capture={"jobE": "error.job_id"})
    step("status failed by service guess", "GET", "/api/status/{jobE}", [AUTH])
    step("create runpod refuse", "POST", "/api/queue/create", [AUTH, JSONCT], create_body("ref"), mode="refuse")
    step("status queued", "GET", "/api/status/{job1}", [AUTH])
    step("status HEAD", "HEAD", "/api/status/{job1}", [AUTH])
    step("status unknown", "GET", "/api/status/" + "0" * 32, [AUTH])
    step("status bad id", "GET", "/api/status/xyz", [AUTH])
    step("status no auth", "GET", "/api/status/{job1}")
    step("status POST", "POST", "/api/status/{job1}", [AUTH], b"")
    step("webhook completed", "POST", "{hook1}", [JSONCT], "{completed1}", put="results/{job1}/0.png")
    step("webhook duplicate", "POST", "{hook1}", [JSONCT], "{completed1}")
    step("webhook bad sig", "POST", "/api/runpod/webhook?job={job1}&sig=" + "0" * 64, [JSONCT], "{completed1}")
    step("webhook no sig", "POST", "/api/runpod/webhook?job={job1}", [JSONCT], "{completed1}")
    step("webhook not json", "POST", "{hook1}", [JSONCT], b"nope")
    step("webhook GET", "GET", "{hook1}")
    step("status completed", "GET", "/api/status/{job1}", [AUTH], capture={"url1": "results.0.url"})
    step("result bearer", "GET", "/api/result/results/{job1}/0.png", [AUTH])
    step("result HEAD", "HEAD", "/api/result/results/{job1}/0.png", [AUTH])
    step("result signed", "GET", "{url1}")
    step("result no auth", "GET", "/api/result/results/{job1}/0.png")
    step("result bad sig", "GET", "/api/result/results/{job1}/0.png?exp=9999999999&sig=" + "0" * 64)
    step("result INM", "GET", "/api/result/results/{job1}/0.png", [AUTH, ("If-None-Match", "{etag1}")])
    step("result INM star", "GET", "/api/result/results/{job1}/0.png", [AUTH, ("If-None-Match", "*")])
    step("result missing", "GET", "/api/result/results/{job1}/9.png", [AUTH])
    step("result bad key", "GET", "/api/result/nope", [AUTH])
    step("result POST", "POST", "/api/result/results/{job1}/0.png", [AUTH], b"")
    # a result whose stored size is not the job's: 409 result_changed
    step("create 2", "POST", "/api/queue/create", [AUTH, JSONCT], create_body("two"), capture={"job2": "job_id"})
    step("webhook completed 2", "POST", "{hook2}", [JSONCT], "{completed2}", put="results/{job2}/0.png")
    step("status 2 before", "GET", "/api/status/{job2}", [AUTH], capture={"url2": "results.0.url"})
    step("result changed", "GET", "/api/result/results/{job2}/0.png", [AUTH], put="results/{job2}/0.png",
         put_data=PNG + b"rewritten")
    step("result changed INM", "GET", "/api/result/results/{job2}/0.png", [AUTH, ("If-None-Match", "*")])
    step("result changed signed", "GET", "{url2}")
    step("result changed HEAD", "HEAD", "/api/result/results/{job2}/0.png", [AUTH])
    step("status 2", "GET", "/api/status/{job2}", [AUTH])
    # failed: settled
    step("create 3", "POST", "/api/queue/create", [AUTH, JSONCT], create_body("three"), capture={"job3": "job_id"})
    step("webhook failed", "POST", "{hook3}", [JSONCT], "{failed3}")
    step("status failed", "GET", "/api/status/{job3}", [AUTH])
    # cancel
    step("create 4", "POST", "/api/queue/create", [AUTH, JSONCT], create_body("four"), capture={"job4": "job_id"})
    step("cancel body reason", "POST", "/api/cancel/{job4}", [AUTH, JSONCT], b'{"reason": "x"}')
    step("cancel body text", "POST", "/api/cancel/{job4}", [AUTH], b"please")
    step("cancel body NUL", "POST", "/api/cancel/{job4}", [AUTH, JSONCT], b'"\\u0000"')
    step("cancel no auth", "POST", "/api/cancel/{job4}", [], None)
    step("cancel GET", "GET", "/api/cancel/{job4}", [AUTH])
    step("cancel unknown", "POST", "/api/cancel/" + "0" * 32, [AUTH], None)
    step("cancel {}", "POST", "/api/cancel/{job4}", [AUTH, JSONCT], b"{}")
    step("cancel again null", "POST", "/api/cancel/{job4}", [AUTH, JSONCT], b"null")
    step("status cancelled", "GET", "/api/status/{job4}", [AUTH], capture={"created4": "timings.created_at"})
    step("metrics of the cancelled job only", "GET", "/api/metrics?since={created4}", [AUTH])
    # recover
    step("create 5", "POST", "/api/queue/create", [AUTH, JSONCT], create_body("five"), capture={"job5": "job_id"})
    step("recover in queue", "POST", "/api/admin/recover/{job5}", [AUTH], None)
    step("recover body", "POST", "/api/admin/recover/{job5}", [AUTH, JSONCT], b'{"a":1}')
    step("recover completed job", "POST", "/api/admin/recover/{job1}", [AUTH], b"")
    step("recover unknown", "POST", "/api/admin/recover/" + "0" * 32, [AUTH], None)
    step("recover no auth", "POST", "/api/admin/recover/{job5}", [], None)
    step("recover GET", "GET", "/api/admin/recover/{job5}", [AUTH])
    # metrics
    step("metrics", "GET", "/api/metrics", [AUTH])
    step("metrics HEAD", "HEAD", "/api/metrics", [AUTH])
    step("metrics since", "GET", "/api/metrics?since=2026-01-01T00:00:00Z", [AUTH])
    step("metrics bad since", "GET", "/api/metrics?since=yesterday", [AUTH])
    step("metrics no auth", "GET", "/api/metrics")
    step("metrics POST", "POST", "/api/metrics", [AUTH], b"")
    # --- probes of value handling where the runtimes' storage differs (D1 numbers are JS doubles)
    step("create traceparent", "POST", "/api/queue/create",
         [AUTH, JSONCT, ("traceparent", "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01")], create_body("tp"))
    step("create lone surrogate", "POST", "/api/queue/create", [AUTH, JSONCT],
         b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a\\ud800b"}}')
    step("create emoji", "POST", "/api/queue/create", [AUTH, JSONCT],
         json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "\U0001F600 caf\u00e9"}}).encode())
    step("create big seed", "POST", "/api/queue/create", [AUTH, JSONCT],
         json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "s", "seed": 2**64}}).encode())
    step("create 6", "POST", "/api/queue/create", [AUTH, JSONCT], create_body("six"), capture={"job6": "job_id"})
    step("webhook huge executionTime", "POST", "{hook6}", [JSONCT], "{huge6}")
    step("status 6", "GET", "/api/status/{job6}", [AUTH])
    step("create 7", "POST", "/api/queue/create", [AUTH, JSONCT], create_body("seven"), capture={"job7": "job_id"})
    step("webhook cost exactly 1 USD", "POST", "{hook7}", [JSONCT], "{dollar7}", put="results/{job7}/0.png")
    step("status 7 (cost 1.0)", "GET", "/api/status/{job7}", [AUTH])
    step("create 8", "POST", "/api/queue/create", [AUTH, JSONCT], create_body("eight"), capture={"job8": "job_id"})
    step("webhook float times", "POST", "{hook8}", [JSONCT], "{float8}")
    step("status 8", "GET", "/api/status/{job8}", [AUTH])
    step("webhook unknown job", "POST", "/api/runpod/webhook?job=" + "1" * 32 + "&sig=" + "{sig_unknown}", [JSONCT],
         "{failed3}")
    step("webhook runpod id mismatch", "POST", "{hook5}", [JSONCT], "{failed3}")
    step("result html object", "GET", "/api/result/results/{job1}/notes.html", [AUTH], put="results/{job1}/notes.html",
         put_data=b"<b>x</b>", put_type="text/html")
    step("recover completed at runpod", "POST", "/api/admin/recover/{job5}", [AUTH], None, runpod_done="5")
    step("status 5", "GET", "/api/status/{job5}", [AUTH])
    step("metrics after", "GET", "/api/metrics", [AUTH])
    step("metrics since job4", "GET", "/api/metrics?since={created4}", [AUTH])
    step("create 9", "POST", "/api/queue/create", [AUTH, JSONCT], create_body("nine"), capture={"job9": "job_id"})
    step("webhook error with NUL", "POST", "{hook9}", [JSONCT], "{nul9}")
    step("status 9 (NUL in error)", "GET", "/api/status/{job9}", [AUTH])
    step("cancel failed-by-guess job", "POST", "/api/cancel/{jobE}", [AUTH], None)
    step("recover failed-by-guess job", "POST", "/api/admin/recover/{jobE}", [AUTH], None)
    step("metrics since offset", "GET", "/api/metrics?since=2026-01-01T02:00:00%2B02:00", [AUTH])
    step("metrics since date only", "GET", "/api/metrics?since=2026-01-01", [AUTH])
    step("result unicode key", "GET", "/api/result/results/{job1}/%C3%A9.png", [AUTH])
    step("not found", "GET", "/nope")
    step("OPTIONS create", "OPTIONS", "/api/queue/create")
    step("DELETE status", "DELETE", "/api/status/{job1}", [AUTH])
    return S


def get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def run(rt: Runtime, fake: FakeRunPod) -> list[dict[str, Any]]:
    from service.signing import webhook_signature

    vars_: dict[str, str] = {}
    out = []
    for st in scenario():
        # derived values, once the job exists in this runtime
        vars_["sig_unknown"] = webhook_signature(HOOK_SECRET, "1" * 32)
        for n in ("1", "2", "3", "k", "4", "5", "6", "7", "8", "9"):
            job = vars_.get(f"job{n}")
            if job and f"hook{n}" not in vars_:
                vars_[f"hook{n}"] = f"/api/runpod/webhook?job={job}&sig={webhook_signature(HOOK_SECRET, job)}"
                rid = fake.by_job.get(job, "rp-none")
                vars_[f"rp{n}"] = rid
                vars_[f"completed{n}"] = completed(rid, f"results/{job}/0.png",
                                                   len(PNG)).decode()
                vars_[f"huge{n}"] = json.dumps({"id": rid, "status": "FAILED", "delayTime": 2**60,
                                                "executionTime": 2**60, "error": "x"})
                vars_[f"float{n}"] = json.dumps({"id": rid, "status": "FAILED", "delayTime": 12.5,
                                                 "executionTime": 2500.75, "error": "x"})
                vars_[f"dollar{n}"] = json.loads(completed(rid, f"results/{job}/0.png", len(PNG)))
                vars_[f"dollar{n}"]["executionTime"] = 2_000_000
                vars_[f"dollar{n}"] = json.dumps(vars_[f"dollar{n}"])
                vars_[f"nul{n}"] = json.dumps({"id": rid, "status": "FAILED", "delayTime": 5, "executionTime": 7,
                                               "error": "bad\u0000thing \u00e9\U0001F600"})
                vars_[f"failed{n}"] = json.dumps({"id": rid, "status": "FAILED", "delayTime": 5,
                                                  "executionTime": 7, "error": "CUDA out of memory"})

        def fill(text: str, known: dict[str, str] = vars_) -> str:
            return re.sub(r"\{(\w+)\}", lambda found: known.get(found.group(1), found.group(0)), text)

        target = fill(st["target"])
        target = target.removeprefix(PUBLIC)
        body = st["body"]
        if isinstance(body, str):
            body = fill(body).encode()
        headers = [(k, fill(v)) for k, v in st["headers"]]
        if st.get("put"):
            rt.put_object(fill(st["put"]), st.get("put_data", PNG), st.get("put_type", "image/png"))
        if st.get("runpod_done"):
            rid = vars_[f"rp{st['runpod_done']}"]
            job = vars_[f"job{st['runpod_done']}"]
            rt.put_object(f"results/{job}/0.png", PNG, "image/png")
            fake.jobs[rid] = json.loads(completed(rid, f"results/{job}/0.png", len(PNG)))
        fake.mode = st.get("mode", "accept")
        before, called = rt.line_count(), len(fake.calls)
        answer = send(rt.port, st["method"], target, headers, body)
        fake.mode = "accept"
        lines = wait_for(lambda n=before: rt.lines_since(n) or None, f"{rt.name} log line of {st['label']}", 30)
        answer["runpod"] = [(verb, mask(path), mask(sent.decode("utf-8", "surrogateescape")))
                            for verb, path, sent in fake.calls[called:]]
        answer["lines"] = [json.loads(x) if x.startswith("{") else {"raw": x} for x in lines]
        answer["label"], answer["target"] = st["label"], target
        answer["request"] = {"method": st["method"], "target": target, "headers": headers,
                             "body": (body or b"")[:200].decode("utf-8", "replace") if body is not None else None}
        try:
            answer["json"] = json.loads(answer["body"]) if answer["body"] else None
        except ValueError:
            answer["json"] = None
        if answer["json"] is not None and st.get("capture"):
            for var, path in st["capture"].items():
                try:
                    vars_[var] = get_path(answer["json"], path)
                except (KeyError, IndexError, TypeError):
                    pass
        if st["label"] == "result bearer":
            vars_["etag1"] = dict(answer["headers"]).get("etag", '"none"')
        out.append(answer)
    return out


# ------------------------------------------------------------------ comparison
MASKS = [(re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-u1"), "<rp>"),
         (re.compile(r"[0-9a-fA-F]{64}"), "<sig>"), (re.compile(r"[0-9a-f]{32}"), "<id>"),
         (re.compile(r"exp=[0-9]+"), "exp=<t>"), (re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z?"), "<time>"),
         (re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d \w{3} \d{4} [\d:]{8} GMT"), "<httpdate>"),
         (re.compile(r'"[0-9a-f]{32}"'), '"<etag>"')]
HEADERS = ("content-type", "content-length", "cache-control", "etag", "retry-after", "location", "www-authenticate",
           "allow", "date", "last-modified", "content-disposition", "x-content-type-options", "idempotent-replayed")
VOLATILE_PATH = re.compile(r"\.(e2e_ms|queue_ms)(\.(p50|p95|p99|mean|max|min)|_mean)$")
VOLATILE_KEYS = {"duration_ms", "ts", "age_s", "e2e_ms", "queue_ms", "run_ms", "elapsed_ms", "took_ms"}


def mask(text: str) -> str:
    for pattern, repl in MASKS:
        text = pattern.sub(repl, text)
    return text


def shape(value: Any, path: str = "") -> Any:
    """Masked value: strings masked, volatile durations replaced by their type."""
    if isinstance(value, dict):
        return {k: (type(v).__name__ if (k in VOLATILE_KEYS or VOLATILE_PATH.search(f"{path}.{k}"))
                    and isinstance(v, (int, float)) else shape(v, f"{path}.{k}")) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v, path) for v in value]
    if isinstance(value, str):
        return mask(value)
    return value


def diff_values(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}.{k}: only cloud ({json.dumps(b[k])[:120]})")
            elif k not in b:
                out.append(f"{path}.{k}: only local ({json.dumps(a[k])[:120]})")
            else:
                out += diff_values(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff_values(x, y, f"{path}[{i}]")]
    if a != b or type(a) is not type(b):
        return [f"{path or '.'}: local {json.dumps(a)[:160]} | cloud {json.dumps(b)[:160]}"]
    return []


def compare(local: dict[str, Any], cloud: dict[str, Any]) -> list[str]:
    out = []
    if local["status"] != cloud["status"]:
        out.append(f"status: local {local['status']} | cloud {cloud['status']}")
    lh, ch = dict(local["headers"]), dict(cloud["headers"])
    for name in sorted(set(lh) | set(ch)):
        if name in ("connection", "keep-alive", "transfer-encoding", "server", "date"):
            continue
        a, b = lh.get(name), ch.get(name)
        if (name == "content-length" and a is not None and b is not None and local["body"] != cloud["body"]
                and mask(local["body"].decode("latin-1")) == mask(cloud["body"].decode("latin-1"))):
            continue
        if name == "content-length" and local["request"]["method"] == "HEAD" and "/api/metrics" in local["target"]:
            continue  # its GET's body carries measured durations
        if name == "content-length" and local["json"] is not None and shape(local["json"]) == shape(cloud["json"]):
            continue
        if (a is None) != (b is None) or (a is not None and mask(a) != mask(b)):
            out.append(f"header {name}: local {a!r} | cloud {b!r}")
    if local["json"] is not None or cloud["json"] is not None:
        out += ["body " + d for d in diff_values(shape(local["json"]), shape(cloud["json"]))]
    elif mask(local["body"].decode("latin-1")) != mask(cloud["body"].decode("latin-1")):
        out.append(f"body: local {local['body'][:80]!r} | cloud {cloud['body'][:80]!r}")
    if local["runpod"] != cloud["runpod"]:
        out.append(f"RunPod calls: local {local['runpod']!r:.600} | cloud {cloud['runpod']!r:.600}")
    la = [shape({k: v for k, v in line.items()}) for line in local["lines"]]
    ca = [shape({k: v for k, v in line.items()}) for line in cloud["lines"]]
    if len(la) != len(ca):
        out.append(f"log lines: local {len(la)} {[x.get('event') for x in la]} | cloud {len(ca)} "
                   f"{[x.get('event') for x in ca]}")
    for i, (x, y) in enumerate(zip(la, ca)):
        out += [f"log[{i}] {d}" for d in diff_values(x, y)]
    return out


def run_both(repo: Path, pyodide: str, scratch: Path) -> list[dict[str, Any]]:
    """The scenario through both runtimes; one entry per step, its `diffs` empty when both answered alike."""
    repo = repo.resolve()
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    scratch.mkdir(parents=True, exist_ok=True)
    for f in scratch.iterdir():
        if f.is_symlink() or f.is_file():  # a link, dangling too: never written through
            f.unlink()
    fake = FakeRunPod()
    local = cloud = None
    try:
        local = Local(repo, scratch, fake.base)
        cloud = Cloud(repo, scratch, fake.base, pyodide)
        answers = {rt.name: run(rt, fake) for rt in (local, cloud)}
    finally:
        for rt in (local, cloud):
            if rt is not None:
                rt.stop()
        fake.server.shutdown()
        fake.server.server_close()
    report = []
    for a, b in zip(answers["local"], answers["cloud"], strict=True):
        report.append({"label": a["label"], "request": a["request"], "local_status": a["status"],
                       "cloud_status": b["status"], "diffs": compare(a, b),
                       "local_runpod": a["runpod"], "cloud_runpod": b["runpod"],
                       "local": {"headers": a["headers"], "body": a["body"][:20000].decode("latin-1"),
                                 "lines": a["lines"]},
                       "cloud": {"headers": b["headers"], "body": b["body"][:20000].decode("latin-1"),
                                 "lines": b["lines"]}})
    return report


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("repo", type=Path)
    ap.add_argument("--pyodide", default="pyodide", help="pyodide (0.27, Python 3.12: compatibility dates before "
                                                          "2025-09-29, the stacks' 2025-09-01) or pyodide-py313")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--scratch", type=Path, default=None, help="(default: a new private temporary directory)")
    args = ap.parse_args()
    scratch = args.scratch if args.scratch is not None else Path(tempfile.mkdtemp(prefix="goldgate-parity-"))
    report = run_both(args.repo, args.pyodide, scratch / args.pyodide)
    for entry in report:
        print(f"{'DIFF' if entry['diffs'] else 'same'} {entry['label']}: {entry['local_status']} / "
              f"{entry['cloud_status']}")
        for d in entry["diffs"]:
            print("    " + d)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    bad = sum(1 for r in report if r["diffs"])
    print(f"{bad} of {len(report)} steps differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
