"""The two runtimes answer alike: one corpus of requests, each sent as raw bytes to the local server (uvicorn, ASGI,
SQLite, moto) and, as workerd hands it over, to the Worker entry (stand-ins of D1, R2 and workers.Response), both
over the same initial database and bucket. Their answers (status, the headers the core sets, the body) must match
once generated ids, signatures and times are masked: a client or RunPod cannot tell which one it talks to.

What workerd does before Python sees a request is modelled, not guessed: the URL goes through a WHATWG URL parser
(node's, the standard workerd's follows), and header fields as a Fetch `Headers` holds them (names lower-cased,
values without surrounding whitespace, a repeated field one comma-joined value)."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import shutil
import socket
import sqlite3
import subprocess
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import pytest
from ci_policy import needs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_testkit import API_TOKEN, BUCKET, WEBHOOK_SECRET, make_config
from test_service_cloudflare_entry import D1, JSNULL, R2, Ctx, Fetch, JsReadableStream, SdkRequest, _entry

from service.app import webhook_body_limit
from service.local_server import start_in_thread
from service.signing import webhook_signature

NODE = shutil.which("node")
pytestmark = needs(NODE is not None, "node (its WHATWG URL parser stands in for workerd's)")

HOST = "api.example"
LIMIT = 4096  # max_body_bytes of both: small, so bodies exactly at and one over it stay cheap


@dataclass(frozen=True)
class Req:
    """One request as a client sends it: `target` is the request target as written on the request line."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None  # None: no body (no Content-Length)
    chunks: tuple[bytes, ...] | None = None  # a chunked upload (Transfer-Encoding: chunked, no length)
    label: str = field(default="", compare=False)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


# Headers only one side's server adds, and hop-by-hop fields: not the core's, so not compared.
_NOT_THE_CORES = {"connection", "transfer-encoding", "keep-alive", "date", "server"}


def _wire(req: Req) -> bytes:
    lines = [f"{req.method} {req.target} HTTP/1.1", f"Host: {HOST}"]
    lines += [f"{name}: {value}" for name, value in req.headers]
    payload = b""
    if req.chunks is not None:
        lines.append("Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in req.chunks if c) + b"0\r\n\r\n"
    elif req.body is not None:
        lines.append(f"Content-Length: {len(req.body)}")
        payload = req.body
    # A header value's lone surrogates (U+DC80..U+DCFF) stand for raw bytes that are not UTF-8.
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n\r\n" + payload


def send_local(port: int, req: Req) -> Answer:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(_wire(req))
        reply = http.client.HTTPResponse(sock, method=req.method)
        reply.begin()
        body = reply.read()
        headers = {k.lower(): v for k, v in reply.getheaders() if k.lower() not in _NOT_THE_CORES}
        return Answer(reply.status, headers, body)


class WhatwgParser:
    """node's WHATWG URL parser as one long-lived process per module: a batch of targets in (one JSON line),
    their parsed forms out (one JSON line). A node start costs ~0.1 s of CPU, and the generated-requests test
    parses one target per example: the same parser answers, started once."""

    SCRIPT = ("const rl = require('readline').createInterface({input: process.stdin});"
              " rl.on('line', (line) => { const out = {}; for (const t of JSON.parse(line)) {"
              f" const u = new URL('https://{HOST}' + t); out[t] = u.href.slice('https://{HOST}'.length); }}"
              " process.stdout.write(JSON.stringify(out) + '\\n'); });")

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def parse(self, targets: list[str]) -> dict[str, str]:
        if self.proc is None:
            self.proc = subprocess.Popen([NODE, "-e", self.SCRIPT], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, encoding="utf-8")
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(targets) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"node's URL parser exited {self.proc.poll()}"
        return json.loads(line)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            assert self.proc.wait(timeout=60) == 0
            self.proc.stdout.close()  # type: ignore[union-attr]
            self.proc = None


_PARSER = WhatwgParser()


@pytest.fixture(scope="module", autouse=True)
def _whatwg_parser() -> Iterator[None]:
    yield
    _PARSER.stop()


def whatwg_targets(targets: list[str]) -> dict[str, str]:
    """Each request target as workerd's URL parser leaves it (path and query, as `request.url` carries them)."""
    return _PARSER.parse(targets)


class FetchHeaders:
    """A Fetch `Headers` built from the fields as sent: what `js_object.headers.entries()` yields in workerd, which
    reads a value's bytes as UTF-8, a byte that is none becoming U+FFFD (cloudflare/workerd#6927; the Fetch
    standard would have one code unit per byte)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        combined: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace").strip(" \t")
            combined[key] = f"{combined[key]}, {value}" if key in combined else value
        self.pairs = combined

    def entries(self) -> list[list[str]]:
        return [[k, self.pairs[k]] for k in sorted(self.pairs)]


class WorkerRequest:
    """The JS Request workerd hands the entry (wrapped in the SDK's workers.Request by the caller)."""

    def __init__(self, req: Req, url: str) -> None:
        self.method, self.url = req.method, f"https://{HOST}{url}"
        pairs = [("host", HOST), *req.headers]
        if req.chunks is None and req.body is not None:
            pairs.append(("content-length", str(len(req.body))))
        self.headers = FetchHeaders(pairs)
        chunks = req.chunks if req.chunks is not None else (req.body,) if req.body else None
        self.body = None if chunks is None else JsReadableStream(iter([c for c in chunks if c]))


async def _read_js_body(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    return await body.read_all()  # an R2 body piped through FixedLengthStream


def send_worker(worker: Any, req: Req, url: str) -> Answer:
    async def go() -> Answer:
        reply = await worker.fetch(SdkRequest(WorkerRequest(req, url)))
        body = await _read_js_body(reply.body)
        headers = {k.lower(): str(v) for k, v in reply.headers.items()}
        if reply.body is not None and req.method != "HEAD" and reply.status not in (204, 304):
            headers["content-length"] = str(len(body))  # workerd sends the length of a body it knows
        if req.method == "HEAD":
            body = b""
        return Answer(reply.status, headers, body)

    return asyncio.run(go())


_MASKS = [(re.compile(rb"[0-9a-fA-F]{64}"), b"<sig>"), (re.compile(rb"[0-9a-f]{32}"), b"<id>"),
          (re.compile(rb"exp=[0-9]+"), b"exp=<t>"),
          (re.compile(rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z?"), b"<time>"),
          (re.compile(rb"\"(?:[a-z_]*_ms|[a-z_]*_s|age_s)\":[0-9.]+"), b"\"<duration>\":0")]


def masked(answer: Answer) -> tuple[int, dict[str, str], bytes]:
    body = answer.body
    for pattern, replacement in _MASKS:
        body = pattern.sub(replacement, body)
    headers = dict(answer.headers)
    for name in ("last-modified",):
        if name in headers:
            headers[name] = "<time>"
    if "location" in headers:  # a create's 202 names its job, a generated id (as the body does)
        headers["location"] = re.sub(r"[0-9a-f]{32}", "<id>", headers["location"])
    if body != answer.body and "content-length" in headers:
        headers["content-length"] = "<n>"  # the masked values may differ in length (a time's digits)
    return answer.status, headers, body


class Pair:
    """The local server and the Worker entry over copies of one database and one bucket."""

    def __init__(self, port: int, worker: Any) -> None:
        self.port, self.worker = port, worker
        self.urls: dict[str, str] = {}

    def both(self, req: Req) -> tuple[Answer, Answer]:
        if req.target not in self.urls:
            self.urls.update(whatwg_targets([req.target]))
        local = send_local(self.port, req)
        cloud = send_worker(self.worker, req, self.urls[req.target])
        return local, cloud

    def prepare(self, reqs: list[Req]) -> None:
        self.urls.update(whatwg_targets(sorted({r.target for r in reqs} - set(self.urls))))

    def diff(self, req: Req) -> str | None:
        local, cloud = self.both(req)
        if masked(local) == masked(cloud):
            return None
        return (f"{req.label or req.method + ' ' + req.target}: local {local.status} {local.headers} "
                f"{local.body[:300]!r}\n    worker {cloud.status} {cloud.headers} {cloud.body[:300]!r}")


@dataclass
class Seed:
    done: str  # a completed job with a PNG and a non-image object in the bucket
    queued: str  # a job RunPod took, its webhook not yet come
    status_url: str  # the completed job's signed PNG URL (path and query), as GET /api/status hands it out


@pytest.fixture
def seeded(svc: Any, tmp_path: Any) -> tuple[Seed, Any]:
    svc.clock[0] = time.time()
    done = svc.create("a lighthouse")["job_id"]
    image = svc.put_result(done)
    svc.s3.put_object(Bucket=BUCKET, Key=f"results/{done}/notes.html", Body=b"<b>hi</b>", ContentType="text/html")
    status, body, _ = svc.deliver(done, svc.completed(done, [image]))
    assert status == 200, body
    queued = svc.create("a harbour")["job_id"]
    source = sqlite3.connect(tmp_path / "db.sqlite")
    for name in ("local.sqlite", "d1.sqlite"):
        copy = sqlite3.connect(tmp_path / name)
        source.backup(copy)
        copy.close()
    source.close()
    url = svc.call("GET", f"/api/status/{done}")[1]["results"][0]["url"]
    return Seed(done, queued, "/" + url.split("://", 1)[1].split("/", 1)[1]), svc


@pytest.fixture
def pair(seeded: tuple[Seed, Any], tmp_path: Any, moto_endpoint: str, fake_runpod: Any, monkeypatch: Any,
         log_lines: Any, capsys: Any) -> Iterator[tuple[Pair, Seed]]:
    seed, svc = seeded
    config = make_config(runpod_endpoint_base=fake_runpod.base, db_path=str(tmp_path / "local.sqlite"),
                         s3_endpoint_url=moto_endpoint, max_body_bytes=LIMIT, public_base_url=f"https://{HOST}",
                         host="127.0.0.1", port=0)
    server = start_in_thread(config, log_sink=log_lines.sink)
    entries = _entry(monkeypatch, with_jsnull=True)
    entry = next(entries)
    env: dict[str, Any] = {"DB": D1(tmp_path / "d1.sqlite", JSNULL), "RESULTS": R2(tmp_path / "r2")}
    for spec in fields(config):
        value = getattr(config, spec.name)
        if spec.name not in entry._LOCAL_ONLY and value is not None:
            env[spec.name.upper()] = str(value)
    for obj in svc.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"results/{seed.done}/")["Contents"]:
        got = svc.s3.get_object(Bucket=BUCKET, Key=obj["Key"])
        env["RESULTS"].put(obj["Key"], got["Body"].read(), got["ContentType"])
    env_ns = types.SimpleNamespace(**env)
    entry.Default._app = entry.build_app(env_ns, fetch=Fetch())
    try:
        yield Pair(server.port, entry.Default(Ctx(), env_ns)), seed
    finally:
        server.stop()
        capsys.readouterr()  # the Worker's lines (stdout): the local server's are the ones checked
        next(entries, None)


AUTH = ("authorization", f"Bearer {API_TOKEN}")
JSON = ("content-type", "application/json")


def _create_body(prompt: str = "p", size: int | None = None) -> bytes:
    body = json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": prompt}}).encode()
    return body if size is None else body + b" " * (size - len(body))


HOOK_LIMIT = webhook_body_limit(LIMIT)


def _padded(body: bytes, size: int) -> bytes:
    return body + b" " * (size - len(body))


def _halves(body: bytes) -> tuple[bytes, bytes]:
    return body[:len(body) // 2], body[len(body) // 2:]


def corpus(seed: Seed) -> list[Req]:
    job, queued = seed.done, seed.queued
    key = f"results/{job}/0.png"
    hook = f"/api/runpod/webhook?job={queued}&sig={webhook_signature(WEBHOOK_SECRET, queued)}"
    sig_hook = webhook_signature(WEBHOOK_SECRET, queued)
    path, query = seed.status_url.split("?", 1)
    good_sig = re.search(r"sig=([0-9a-f]+)", query).group(1)
    delivery = json.dumps({"id": "rp-unknown", "status": "IN_PROGRESS"}).encode()
    reqs = [
        Req("GET", "/healthz"), Req("GET", "/healthz/"), Req("GET", "//healthz"), Req("GET", "/healthz?"),
        Req("GET", "/healthz?a=1&a=2&&b=&=c"), Req("GET", "/HEALTHZ"), Req("GET", "/%68ealthz"),
        Req("GET", "/./healthz"), Req("GET", "/x/../healthz"), Req("GET", "/%2e/healthz"), Req("GET", "/\\healthz"),
        Req("GET", "/healthz#frag"), Req("GET", "/healthz;x"), Req("GET", "/api/workflows", (AUTH,)),
        Req("GET", "/api/workflows"), Req("GET", "/api/workflows/", (AUTH,)), Req("GET", "/api//workflows", (AUTH,)),
        Req("GET", "/api/workflows", (("authorization", f"bearer {API_TOKEN}"),), label="lower-case scheme"),
        Req("GET", "/api/workflows", (("authorization", f"BEARER {API_TOKEN}"),)),
        Req("GET", "/api/workflows", (("authorization", f"Bearer  {API_TOKEN}"),), label="two spaces"),
        Req("GET", "/api/workflows", (("authorization", f"  Bearer {API_TOKEN}  "),), label="OWS around"),
        Req("GET", "/api/workflows", (("authorization", f"Bearer\t{API_TOKEN}"),), label="tab"),
        Req("GET", "/api/workflows", (AUTH, AUTH), label="two Authorization, same"),
        Req("GET", "/api/workflows", (("authorization", "Bearer wrong"), AUTH), label="two Authorization, 1 wrong"),
        Req("GET", "/api/workflows", (("authorization", "Basic dXNlcjpwYXNz"),)),
        Req("GET", "/api/workflows", (("authorization", ""),), label="empty Authorization"),
        Req("GET", "/api/workflows", (("authorization", "Bearer t\u00f6k"),), label="non-ASCII Authorization"),
        Req("GET", "/api/workflows", (("authorization", f"Bearer {API_TOKEN}\u00e9"),), label="token + é"),
        Req("GET", "/api/workflows", (("authorization", f"Bearer {API_TOKEN}\udce9"),), label="token + byte E9"),
        Req("GET", "/healthz", (("connection", "upgrade"), ("upgrade", "websocket")), label="Upgrade offer"),
        Req("HEAD", "/healthz", (), b"abc", label="HEAD with a body"),
        Req("GET", "/api/workflows", (AUTH,), None, (b"ab", b"c"), label="GET chunked body"),
        Req("POST", "/api/queue/create", (AUTH, JSON, ("expect", "100-continue")), _create_body("e")),
        Req("GET", "/api/workflows", (("Authorization", f"Bearer {API_TOKEN}"),), label="name case"),
        Req("GET", f"/api/status/{job}", (AUTH,)), Req("GET", f"/api/status/{job}/", (AUTH,)),
        Req("GET", f"/api/status/{job}?x=1&x=", (AUTH,)), Req("GET", f"/api/status/{job.upper()}", (AUTH,)),
        Req("GET", f"/api/status/%{ord(job[0]):02x}{job[1:]}", (AUTH,), label="percent-encoded id char"),
        Req("GET", f"/api/status/x/../{job}", (AUTH,)), Req("GET", f"/api/status/{job}%00", (AUTH,)),
        Req("GET", f"/api/status/{job}", (AUTH,), b'{"x":1}', label="GET with body"),
        Req("HEAD", f"/api/status/{job}", (AUTH,)), Req("HEAD", "/healthz"), Req("HEAD", "/api/workflows", (AUTH,)),
        Req("HEAD", "/api/workflows"), Req("HEAD", "/nope"), Req("HEAD", "/api/queue/create", (AUTH,)),
        Req("OPTIONS", "/api/queue/create"), Req("OPTIONS", "/healthz"), Req("OPTIONS", "/nope"),
        Req("PUT", "/api/queue/create", (AUTH, JSON), _create_body()), Req("DELETE", f"/api/status/{job}", (AUTH,)),
        Req("PATCH", "/healthz", (), b""), Req("PROPFIND", "/api/workflows", (AUTH,)),
        Req("GET", "/api/queue/create", (AUTH,)), Req("POST", "/healthz", (), b"{}"),
        # results: bearer, signed, signature variants
        Req("GET", f"/api/result/{key}", (AUTH,)), Req("HEAD", f"/api/result/{key}", (AUTH,)),
        Req("GET", f"/api/result/{key}"), Req("GET", seed.status_url), Req("HEAD", seed.status_url),
        Req("GET", f"{path}?{query.replace(good_sig, good_sig.upper())}", label="sig upper case"),
        Req("GET", f"{path}?{query.replace('sig=', 'SIG=')}", label="SIG name"),
        Req("GET", f"{path}?{query}&sig=00", label="sig twice, good first"),
        Req("GET", f"{path}?sig=00&{query}", label="sig twice, bad first"),
        Req("GET", f"{path}?{query.replace('sig=' + good_sig, 'sig=')}", label="empty sig"),
        Req("GET", f"{path}?{query}", (("authorization", "Bearer wrong"),), label="signed + wrong bearer"),
        Req("GET", f"{path.replace('0.png', '%30.png')}?{query}", label="encoded key char"),
        Req("GET", f"/api/result/{key}", (AUTH, ("range", "bytes=0-3"))),
        Req("GET", f"/api/result/{key}", (AUTH, ("if-none-match", '"nope"'))),
        Req("GET", f"/api/result/{key}", (AUTH, ("if-none-match", "*")), label="If-None-Match *"),
        Req("GET", f"/api/result/results/{job}/notes.html", (AUTH,)),
        Req("GET", f"/api/result/results/{job}/missing.png", (AUTH,)),
        Req("GET", f"/api/result/results/{job}/../{job}/0.png", (AUTH,)),
        # webhook: signature and body handling (the queued job stays queued: RunPod ids are checked first)
        Req("POST", hook, (JSON,), b""), Req("POST", hook, (JSON,), None, label="webhook no body"),
        Req("POST", hook, (JSON,), b"not json"), Req("POST", hook, (JSON,), b"\xef\xbb\xbf" + delivery, label="BOM"),
        Req("POST", hook, (JSON,), b'{"id": NaN}'), Req("POST", hook, (JSON,), b'{"id": 1e999}'),
        Req("POST", hook, (JSON,), b"[" * 3000 + b"]" * 3000, label="deep"),
        Req("POST", hook, (("content-type", "text/plain"),), delivery, label="webhook text/plain"),
        Req("POST", hook, (JSON,), None, (delivery[:5], delivery[5:]), label="webhook chunked"),
        Req("POST", hook.replace(sig_hook, sig_hook.upper()), (JSON,), delivery, label="webhook SIG upper"),
        Req("POST", f"{hook}&job=0", (JSON,), delivery, label="job twice"),
        Req("POST", f"/api/runpod/webhook?job={queued}&sig=00", (JSON,), delivery),
        Req("POST", hook, (JSON,), _padded(delivery, LIMIT + 1), label="signed webhook over the client limit"),
        Req("POST", hook, (JSON,), _padded(delivery, HOOK_LIMIT), label="webhook exactly at its limit"),
        Req("POST", hook, (JSON,), _padded(delivery, HOOK_LIMIT + 1), label="webhook one over its limit"),
        Req("POST", hook, (JSON,), None, _halves(_padded(delivery, HOOK_LIMIT)), label="chunked webhook at"),
        Req("POST", hook, (JSON,), None, _halves(_padded(delivery, HOOK_LIMIT + 1)), label="chunked webhook over"),
        Req("POST", f"/api/runpod/webhook?job={queued}&sig=00", (JSON,), _padded(delivery, LIMIT + 1),
            label="unsigned webhook over the client limit"),
        Req("POST", "/api/runpod/webhook", (JSON,), delivery), Req("POST", f"{hook}/", (JSON,), delivery),
        Req("POST", f"/api/runpod/webhook/?job={queued}&sig={sig_hook}", (JSON,), delivery, label="hook slash"),
        # create: bodies
        Req("POST", "/api/queue/create", (AUTH, JSON), b""), Req("POST", "/api/queue/create", (AUTH, JSON), None),
        Req("POST", "/api/queue/create", (AUTH, JSON), b"\xef\xbb\xbf" + _create_body(), label="create BOM"),
        Req("POST", "/api/queue/create", (AUTH, JSON), b'{"workflow_id": "sdxl-txt2img", "inputs": {"seed": NaN}}'),
        Req("POST", "/api/queue/create", (AUTH, JSON), b'{"workflow_id": "x", "workflow_id": "sdxl-txt2img", '
                                                       b'"inputs": {"prompt": "p"}}', label="duplicate keys"),
        Req("POST", "/api/queue/create", (AUTH, JSON), b'{"inputs": {"seed": Infinity}}'),
        Req("POST", "/api/queue/create", (AUTH, JSON), b"[" * 2000, label="create deep"),
        Req("POST", "/api/queue/create", (AUTH, JSON), b'"\\ud800"'),
        Req("POST", "/api/queue/create", (AUTH, JSON), b"\xff\xfe"),
        Req("POST", "/api/queue/create", (AUTH, ("content-type", "text/plain")), _create_body(), label="text/plain"),
        Req("POST", "/api/queue/create", (AUTH,), _create_body(), label="no content-type"),
        Req("POST", "/api/queue/create", (AUTH, JSON), _create_body(size=LIMIT), label="exactly at the limit"),
        Req("POST", "/api/queue/create", (AUTH, JSON), _create_body(size=LIMIT + 1), label="one over the limit"),
        Req("POST", "/api/queue/create", (AUTH, JSON), None, (_create_body(size=LIMIT)[:100],
                                                              _create_body(size=LIMIT)[100:]), label="chunked at"),
        Req("POST", "/api/queue/create", (AUTH, JSON), None, (_create_body(size=LIMIT + 1)[:100],
                                                              _create_body(size=LIMIT + 1)[100:]), label="chunked over"),
        Req("POST", "/api/queue/create", (JSON,), _create_body(size=LIMIT + 1), label="over, no auth"),
        Req("POST", "/api/queue/create", (AUTH, JSON, ("idempotency-key", "k-1")), _create_body("i")),
        Req("POST", "/api/queue/create", (AUTH, JSON, ("idempotency-key", "k-1")), _create_body("i"), label="replay"),
        Req("POST", "/api/queue/create", (AUTH, JSON, ("idempotency-key", ' "k-1" ')), _create_body("i"),
            label="quoted key replay"),
        Req("POST", "/api/queue/create", (AUTH, JSON, ("idempotency-key", "k-1")), _create_body("j"), label="reuse"),
        Req("POST", "/api/queue/create", (AUTH, JSON, ("idempotency-key", "k\u00e9")), _create_body("i"),
            label="non-ASCII key"),
        Req("POST", "/api/queue/create", (AUTH, JSON, ("idempotency-key", "k\udce9\udcff")), _create_body("i"),
            label="key of bytes that are not UTF-8"),
        Req("POST", "/api/queue/create", (AUTH, JSON, ("idempotency-key", "a"), ("idempotency-key", "b")),
            _create_body("i"), label="two keys"),
        Req("POST", "/api/queue/create", (AUTH, JSON, ("traceparent", "00-" + "a" * 32 + "-" + "b" * 16 + "-01")),
            _create_body("t")),
        Req("GET", "/api/metrics", (AUTH,)), Req("GET", "/api/metrics?since=1", (AUTH,)),
        Req("GET", "/api/metrics?since=&since=2026-01-01", (AUTH,)),
        Req("GET", "/api/metrics?since=2026-01-01T00:00:00Z", (AUTH,)),
        Req("POST", f"/api/admin/recover/{job}", (AUTH,), b""), Req("POST", f"/api/admin/recover/{job}/", (AUTH,), b""),
        Req("GET", "/nope"), Req("GET", "/api/status/", (AUTH,)), Req("GET", "/api/result/", (AUTH,)),
        Req("GET", "/%zz"), Req("GET", "/a%2fb"), Req("GET", "/{x}"), Req("GET", "/api/status/%C3%A9", (AUTH,)),
        Req("GET", "/api/status/<x>'\"`^|", (AUTH,)), Req("GET", "/healthz?a='\"<>`{}|^"),
        Req("GET", "/api/status/" + "<" * 100, (AUTH,), label="status id of 100 '<'"),
        Req("GET", "/api/result/results/" + "{" * 400, (AUTH,), label="result key of 400 '{'"),
        Req("POST", "/api/queue/create", (AUTH, JSON, ("idempotency-key", "")), _create_body("i"), label="empty key"),
    ]
    return reqs


def test_every_request_of_the_corpus_gets_the_same_answer_from_both_runtimes(pair):
    both, seed = pair
    reqs = corpus(seed)
    both.prepare(reqs)
    divergent = [d for d in (both.diff(req) for req in reqs) if d is not None]
    assert not divergent, f"{len(divergent)} of {len(reqs)} requests answered differently:\n" + "\n".join(divergent)


_SEGMENTS = st.sampled_from(["api", "status", "result", "results", "queue", "create", "workflows", "metrics",
                             "healthz", "runpod", "webhook", "admin", "recover", ".", "..", "%2e", "%2E%2e", "",
                             "%41", "a b", "x;y", "%", "%2f", "\\", "0.png", "~", "'", '"', "<", "%C3%A9", "{", "|",
                             "<" * 70, "`" * 350])
_QUERY_PARTS = st.lists(st.tuples(st.sampled_from(["job", "sig", "SIG", "exp", "since", "a", ""]),
                                  st.sampled_from(["", "1", "00", "%41", "a+b", "x y", "'", "%C3%A9", "0" * 64, "`", '"', "<"])),
                        max_size=4)
_HEADER_SETS = st.lists(st.sampled_from([AUTH, JSON, ("authorization", "bearer x"), ("if-none-match", "*"),
                                         ("idempotency-key", "k"), ("authorization", f" Bearer {API_TOKEN} "),
                                         ("x-other", "v,w"), ("accept", "*/*"), ("idempotency-key", "k\u00e9"),
                                         ("authorization", "Bearer \udce9"), ("upgrade", "h2c")]), max_size=3)
_BODIES = st.sampled_from([None, b"", b"{}", b"[]", _create_body("h"), b"{\"a\":", b"\xef\xbb\xbf{}", b"nul"])


@st.composite
def requests(draw: Any) -> Req:
    path = "/" + "/".join(draw(st.lists(_SEGMENTS, min_size=1, max_size=5)))
    params = draw(_QUERY_PARTS)
    query = "&".join(f"{k}={v}" if k or v else "" for k, v in params)
    target = path + ("?" + query if draw(st.booleans()) else "")
    method = draw(st.sampled_from(["GET", "HEAD", "POST", "PUT", "OPTIONS", "DELETE"]))
    body = draw(_BODIES) if method not in ("GET", "HEAD") else None
    return Req(method, target.replace(" ", "%20") if " " in target else target, tuple(draw(_HEADER_SETS)), body)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow], database=None)
@given(req=requests())
def test_generated_requests_get_the_same_answer_from_both_runtimes(pair, req):
    both, _ = pair
    divergence = both.diff(req)
    assert divergence is None, divergence
