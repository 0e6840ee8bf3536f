"""The golden runner as a client of the real service (uvicorn over SQLite, moto S3 for R2) through a
flaky proxy on 127.0.0.1: a create whose answer is lost is sent again with its Idempotency-Key, so
the case passes and RunPod runs it once. RunPod is a small stand-in that takes /run, stores the
render where a worker would, and calls the job's signed webhook back."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import jsonschema
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer
from release_support import render_png, write_case

from goldgate.release import golden as golden_module
from goldgate.release.cases import load_cases
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.spec import Thresholds
from service.config import ServiceConfig
from service.local_server import start_in_thread

REPO = Path(__file__).resolve().parents[2]
IMAGE = "local/worker@sha256:" + "d" * 64
TOKEN = "golden-idem-token-not-a-secret"
WEBHOOK_SECRET = "golden-idem-webhook-not-a-secret"
RUNPOD_KEY = "golden-idem-runpod-not-a-secret"
S3_KEY_ID, S3_SECRET, BUCKET = "AKIAGOLDENIDEM", "golden-idem-s3-not-a-secret", "golden-results"
# A case limit that leaves room for the create and a first status poll on a loaded machine: the two tests that wait
# it out need a poll's answer inside it (two seconds were sometimes spent before the first poll was answered).
_POLL_LIMIT_S = 10
_LIMITED_CASE = f"workflow: sdxl-txt2img\ninputs: {{prompt: p}}\nexpect: {{max_latency_s: {_POLL_LIMIT_S}}}\n"
LOG_SCHEMA = jsonschema.Draft202012Validator(json.loads((REPO / "docs" / "logging-schema-v1.json").read_text()),
                                             format_checker=jsonschema.FormatChecker())


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
    handler.send_response(status)
    for k, v in headers.items():
        handler.send_header(k, v)
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@dataclass
class RunPod:
    """RunPod's /run: one run per body it takes; each is rendered into R2 and its webhook delivered. Its /status
    answers `status_answer` for every run (a recovery's one call)."""

    s3: Any
    # accept | down (answers 500: the service reports 503 runpod_unavailable) | silent (takes the run, and its
    # webhook never comes: the job waits for `goldgate recover`)
    mode: str = "accept"
    status_answer: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self, run_id: str, body: dict[str, Any]) -> None:
        job = body["input"]
        data = render_png(f"{job['inputs']['prompt']}:{job['inputs']['seed']}", 64, 64)
        key = f"{job['result_prefix']}0.png"
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="image/png")
        image = {"key": key, "content_type": "image/png", "bytes": len(data),
                 "sha256": hashlib.sha256(data).hexdigest(), "width": 64, "height": 64}
        httpx.post(body["webhook"], timeout=10, json={
            "id": run_id, "status": "COMPLETED", "delayTime": 10, "executionTime": 100,
            "output": {"images": [image], "worker_image_tag": IMAGE, "workflow_version": job["workflow_version"],
                       "gpu_type": "NVIDIA GeForce RTX 4090"}})

    def handler(self) -> type[BaseHTTPRequestHandler]:
        runpod = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if runpod.mode == "down":
                    return _reply(self, 500, b'{"error": "internal"}', {"content-type": "application/json"})
                with runpod.lock:
                    runpod.runs.append(body)
                    run_id = f"rp-{len(runpod.runs)}"
                _reply(self, 200, json.dumps({"id": run_id, "status": "IN_QUEUE"}).encode(),
                       {"content-type": "application/json"})
                if runpod.mode != "silent":
                    threading.Thread(target=runpod.finish, args=(run_id, body), daemon=True).start()
                return None

            def do_GET(self) -> None:
                run_id = self.path.rsplit("/status/", 1)[-1]
                _reply(self, 200, json.dumps({"id": run_id, **runpod.status_answer}).encode(),
                       {"content-type": "application/json"})

        return Handler


@dataclass
class Proxy:
    """Forwards every request to the service, and loses the answers `lose` names ("METHOD /path-prefix": the
    ways to lose the next ones, in order): `drop` hangs up without answering, `504` answers as a gateway
    that timed out, `500` as a service that failed, `hang` holds the request until the stack stops and hangs up."""

    upstream: str = ""
    lose: dict[str, list[str]] = field(default_factory=dict)
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, idempotency key
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                proxy.seen.append((self.command, self.path.split("?")[0], self.headers.get("idempotency-key")))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = httpx.request(self.command, proxy.upstream + self.path, headers=headers, content=body,
                                       timeout=30)
                with proxy.lock:  # cases run concurrently: each lost answer is lost once
                    lost = next((k for k in proxy.lose if f"{self.command} {self.path}".startswith(k)), None)
                    how = proxy.lose[lost].pop(0) if lost is not None else None
                    if lost is not None and not proxy.lose[lost]:
                        del proxy.lose[lost]
                if how is not None:
                    if how == "504":
                        _reply(self, 504, b"gateway timeout", {"content-type": "text/plain"})
                    elif how == "500":
                        _reply(self, 500, b'{"error": {"code": "internal", "message": "upstream failed"}}',
                               {"content-type": "application/json"})
                    elif how == "hang":  # holds the answer longer than any case here waits
                        proxy.stopping.wait(60)
                    elif how == "409busy":  # what the service answers when a request with the key failed meanwhile
                        _reply(self, 409, b'{"error": {"code": "idempotency_key_busy", "message": "retry with the '
                                          b'same key"}}', {"content-type": "application/json"})
                    return None  # "drop": the connection closes with nothing sent
                passed = {k: v for k, v in answer.headers.items()
                          if k.lower() not in ("content-length", "content-encoding", "transfer-encoding", "connection")}
                return _reply(self, answer.status_code, answer.content, passed)

            do_GET = do_POST = _forward

        return Handler


@dataclass
class Stack:
    url: str
    db_path: Path
    runpod: RunPod
    proxy: Proxy

    def jobs(self) -> int:
        conn = sqlite3.connect(self.db_path)
        try:
            return conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        finally:
            conn.close()

    def creates(self) -> list[str | None]:
        return [key for method, path, key in self.proxy.seen if (method, path) == ("POST", "/api/queue/create")]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with live_stack(tmp_path) as running:
        yield running


@contextmanager
def live_stack(tmp_path: Path) -> Iterator[Stack]:
    """The service, its RunPod stand-in and moto up behind the proxy; the service's log lines checked at the end."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}", aws_access_key_id=S3_KEY_ID,
                      aws_secret_access_key=S3_SECRET, region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket=BUCKET)
    runpod, proxy = RunPod(s3), Proxy()
    runpod_server, runpod_url = _serve(runpod.handler())
    proxy_server, proxy_url = _serve(proxy.handler())
    db_path = tmp_path / "jobs.sqlite"
    config = ServiceConfig.from_mapping({
        "stack": "staging", "api_token": TOKEN, "webhook_secret": WEBHOOK_SECRET, "runpod_api_key": RUNPOD_KEY,
        "runpod_endpoint_base": f"{runpod_url}/v2/ep-golden", "public_base_url": proxy_url,
        "workflows_dir": str(REPO / "images" / "worker" / "workflows"), "worker_image_tag": IMAGE,
        "workflow_version": "golden-idem", "db_path": str(db_path), "apply_migrations_from": str(REPO / "migrations"),
        "s3_endpoint_url": f"http://{host}:{port}", "s3_bucket": BUCKET, "s3_access_key_id": S3_KEY_ID,
        "s3_secret_access_key": S3_SECRET, "host": "127.0.0.1", "port": 0})
    logged: list[str] = []
    service = start_in_thread(config, log_sink=logged.append)
    proxy.upstream = service.url
    try:
        yield Stack(proxy_url, db_path, runpod, proxy)
    finally:
        proxy.stopping.set()
        for server in (proxy_server, runpod_server):
            server.shutdown()
            server.server_close()
        service.stop()
        moto.stop()
    check_service_logs(logged)


def check_service_logs(lines: list[str]) -> None:
    """The service logged, and every line is one schema-valid JSON object with no secret and no signed URL in it."""
    assert lines, "the service logged nothing"
    for line in lines:
        errors = sorted(LOG_SCHEMA.iter_errors(json.loads(line)), key=str)
        assert not errors, f"log line violates docs/logging-schema-v1.json: {errors[0].message}\n{line}"
        for secret in (TOKEN, WEBHOOK_SECRET, RUNPOD_KEY, S3_SECRET):
            assert secret not in line, f"a secret leaked into a log line: {line}"
        assert not re.search(r"sig=[0-9A-Fa-f]", line), f"a signed webhook URL leaked into a log line: {line}"


def golden(stack: Stack, root: Path, *names: str) -> dict[str, Any]:
    for name in names:
        write_case(root / "cases", name, f"workflow: sdxl-txt2img\ninputs: {{prompt: {name}, seed: 7}}\n"
                                         "expect: {images: 1, width: 64, height: 64, max_latency_s: 60}\n")
        (root / "references").mkdir(exist_ok=True)
        (root / "references" / f"{name}.png").write_bytes(render_png(f"{name}:7", 64, 64))
    target = SuiteTarget(stack="staging", target="local", image=IMAGE, workflow_version="golden-idem",
                         thresholds=Thresholds())
    return run_suite(load_cases(root / "cases"), ApiAccess(stack.url, TOKEN), target,
                     references_dir=root / "references", poll_s=0.05, cover_workflows=False)  # sdxl cases only


@pytest.mark.parametrize("how", ["drop", "504"])
def test_a_create_whose_answer_is_lost_is_sent_again_with_its_key_and_runs_once(stack: Stack, tmp_path: Path,
                                                                                  how: str) -> None:
    stack.proxy.lose["POST /api/queue/create"] = [how]
    report = golden(stack, tmp_path, "lighthouse", "harbour")
    assert report["passed"] is True, report["failures"]
    assert stack.jobs() == 2 and len(stack.runpod.runs) == 2  # the lost create's job is the one it passed on
    keys = stack.creates()
    assert len(keys) == 3 and None not in keys
    assert sorted(keys.count(k) for k in set(keys)) == [1, 2]  # one key per case, sent again unchanged
    assert {c["job_id"] for c in report["cases"]} == {r["input"]["job_id"] for r in stack.runpod.runs}


def test_a_create_whose_answers_keep_failing_is_given_up_after_a_bounded_number_of_sends(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(golden_module, "RETRY_BACKOFF_S", 0.01)
    stack.proxy.lose["POST /api/queue/create"] = ["500"] * 10
    report = golden(stack, tmp_path, "lighthouse")
    error = report["cases"][0]["error"]
    assert report["passed"] is False
    assert "queue/create answered 500: internal: upstream failed (4 attempt(s), all with the same" in error
    keys = stack.creates()
    assert len(keys) == 4 and len(set(keys)) == 1
    assert stack.jobs() == 1 and len(stack.runpod.runs) == 1  # the case failed, but was billed once


def test_a_create_the_service_answers_key_busy_is_sent_again_with_its_key(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(golden_module, "RETRY_BACKOFF_S", 0.01)
    stack.proxy.lose["POST /api/queue/create"] = ["409busy"]
    report = golden(stack, tmp_path, "lighthouse")
    assert report["passed"] is True, report["failures"]
    keys = stack.creates()
    assert len(keys) == 2 and len(set(keys)) == 1 and stack.jobs() == 1 and len(stack.runpod.runs) == 1


def test_a_refused_create_is_not_sent_again(stack: Stack, tmp_path: Path) -> None:
    write_case(tmp_path / "cases", "bad", "workflow: sdxl-txt2img\ninputs: {prompt: p, steps: 999}\n")
    (tmp_path / "references").mkdir()
    report = run_suite(load_cases(tmp_path / "cases"), ApiAccess(stack.url, TOKEN),
                       SuiteTarget("staging", "local", IMAGE, "golden-idem", Thresholds()),
                       references_dir=tmp_path / "references", poll_s=0.05)
    assert report["passed"] is False and "queue/create answered 400" in report["cases"][0]["error"]
    assert len(stack.creates()) == 1 and stack.jobs() == 0


def test_a_create_runpod_was_unavailable_for_is_reported_not_sent_again(stack: Stack, tmp_path: Path) -> None:
    # 503 runpod_unavailable is an answer: the job is marked failed and nothing runs; a release must see it.
    stack.runpod.mode = "down"
    report = golden(stack, tmp_path, "lighthouse")
    error = report["cases"][0]["error"]
    assert report["passed"] is False and "queue/create answered 503: runpod_unavailable" in error
    assert len(stack.creates()) == 1 and stack.runpod.runs == []


def test_a_status_poll_whose_answer_is_lost_is_polled_again(stack: Stack, tmp_path: Path) -> None:
    stack.proxy.lose["GET /api/status/"] = ["drop"]
    report = golden(stack, tmp_path, "lighthouse")
    assert report["passed"] is True, report["failures"]
    polls = [p for m, p, _ in stack.proxy.seen if m == "GET" and p.startswith("/api/status/")]
    assert len(polls) >= 2 and stack.jobs() == 1 and len(stack.runpod.runs) == 1


def test_a_status_poll_that_keeps_failing_fails_the_case_at_its_limit_naming_the_job(stack: Stack,
                                                                                        tmp_path: Path) -> None:
    stack.proxy.lose["GET /api/status/"] = ["500"] * 1000
    write_case(tmp_path / "cases", "a", _LIMITED_CASE)
    report = run_suite(load_cases(tmp_path / "cases"), ApiAccess(stack.url, TOKEN),
                       SuiteTarget("staging", "local", IMAGE, "golden-idem", Thresholds()),
                       references_dir=tmp_path, poll_s=0.05)
    [case] = report["cases"]
    assert case["job_id"]
    assert f"job {case['job_id']} still without a status after {_POLL_LIMIT_S:g} s" in case["error"]
    # the last poll failed with the 500, or was cut off by the limit and the 500 stays the reason
    assert "poll failed: answered 500: internal: upstream failed" in case["error"]


def test_a_poll_cut_off_by_the_limit_keeps_the_earlier_polls_failure_as_the_reason(stack: Stack,
                                                                                    tmp_path: Path) -> None:
    # The poll after a 500 hangs until the case's deadline cuts it: its timeout is the limit's doing, not news.
    stack.proxy.lose["GET /api/status/"] = ["500", "hang"]
    write_case(tmp_path / "cases", "a", _LIMITED_CASE)
    report = run_suite(load_cases(tmp_path / "cases"), ApiAccess(stack.url, TOKEN),
                       SuiteTarget("staging", "local", IMAGE, "golden-idem", Thresholds()),
                       references_dir=tmp_path, poll_s=0.05)
    [case] = report["cases"]
    assert f"job {case['job_id']} still without a status after {_POLL_LIMIT_S:g} s" in case["error"]
    assert ("a poll failed: answered 500: internal: upstream failed (the last was cut off by the limit)"
            in case["error"]), case["error"]
