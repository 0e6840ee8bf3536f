"""The RunPod emulator's HTTP shell: a route table over the backend and the wire format.

One port serves the REST v2 control plane (`/v2/serverless...`, `/v2/registries...`, `/v2/catalog/gpus`),
the serverless
data plane (`/v2/{endpoint}/run` ...), and the worker URLs the runpod SDK calls
(`/v2/{endpoint}/job-take/{worker}` ...). Threaded: long-polls hold a thread each."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from goldgate.local.runpod import responses
from goldgate.local.runpod.backend import EmulatorError, RunPodBackend
from goldgate.local.runpod.eventlog import EventLog
from goldgate.local.runpod.openapi import component, schema_errors, spec
from goldgate.local.serving import ReadDeadlines, WokenOnShutdown

MAX_BODY = 21 * 1024 * 1024
# How long a client may take (_HTTPHandler's deadlines, as goldgate.local.serving.ReadDeadlines keeps them), as a
# front end bounds it (nginx: 60 s for a header block, 60 s between body reads):
# a connection that begins no request within IDLE_TIMEOUT_S is closed; a request must arrive whole, header block and
# body, within REQUEST_TIMEOUT_S of its first byte (a 408, and the connection closed); an answer the client has not
# taken in full within WRITE_TIMEOUT_S is dropped with its connection. Without them a client that sent half a request,
# or trickled it a byte at a time, held its connection and a server thread forever. A 20 MB body from a loopback
# client takes well under a second. RunPod documents none of these.
IDLE_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 60.0
WRITE_TIMEOUT_S = 60.0
# The REST v2 collections (/v2/serverless, /v2/templates, ...): their errors are problem JSON, whether emulated or not.
CONTROL_COLLECTIONS = frozenset(path.split("/")[2] for path in spec()["paths"])


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _double(text: str) -> float:
    # 1e999 is valid JSON syntax, but no double holds it: Python would keep inf, which no JSON can carry on.
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


# GET /v2/catalog/gpus query values (the spec's CatalogIncludeParam, GpuProductFilter, GpuCloudFilter, ...).
_CATALOG_ENUMS = {"include": ("AVAILABILITY",), "product": ("POD", "CLUSTER", "SERVERLESS"),
                  "cloud": ("SECURE", "COMMUNITY")}
_CATALOG_PATTERNS = {"countryCodes": re.compile(r"[A-Z]{2}"), "cudaVersions": re.compile(r"\d+\.\d+"),
                     "minCudaVersion": re.compile(r"\d+(\.\d+)?"), "count": re.compile(r"[1-9]\d*")}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str]
    unread: int = 0  # the length of a body too large to be read (then `body` is empty)

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            # Strict RFC 8259, as RunPod parses it: no NaN/Infinity, and no nesting deep enough to blow the stack.
            return json.loads(self.body, parse_constant=_not_json, parse_float=_double)
        except (ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise EmulatorError(400, "Bad Request", f"request body is not valid JSON ({reason})") from None


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Reply]


class RunPodApp:
    """Routing and auth; each route is a short function over the backend."""

    def __init__(self, backend: RunPodBackend, api_key: str, worker_token: str, data_base: str,
                 log: EventLog) -> None:
        self.backend = backend
        self.api_key = api_key
        self.worker_token = worker_token
        self.data_base = data_base
        self.log = log
        cfg = backend.config
        W = r"(?P<eid>[A-Za-z0-9_-]+)"
        # (method, pattern, auth, handler): auth is "api" (Bearer key) or "worker" (the pod's key)
        self.routes: list[tuple[str, re.Pattern[str], str, Handler]] = [
            ("GET", re.compile(r"/v2/serverless"), "api", self.list_endpoints),
            ("POST", re.compile(r"/v2/serverless"), "api", self.create_endpoint),
            ("GET", re.compile(r"/v2/serverless/(?P<id>[^/]+)"), "api", self.get_endpoint),
            ("PATCH", re.compile(r"/v2/serverless/(?P<id>[^/]+)"), "api", self.update_endpoint),
            ("DELETE", re.compile(r"/v2/serverless/(?P<id>[^/]+)"), "api", self.delete_endpoint),
            ("GET", re.compile(r"/v2/serverless/(?P<id>[^/]+)/releases"), "api", self.list_releases),
            ("GET", re.compile(r"/v2/serverless/(?P<id>[^/]+)/workers"), "api", self.list_workers),
            ("GET", re.compile(r"/v2/registries"), "api", self.list_registries),
            ("POST", re.compile(r"/v2/registries"), "api", self.create_registry),
            ("GET", re.compile(r"/v2/registries/(?P<id>[^/]+)"), "api", self.get_registry),
            ("DELETE", re.compile(r"/v2/registries/(?P<id>[^/]+)"), "api", self.delete_registry),
            ("GET", re.compile(r"/v2/catalog/gpus"), "api", self.list_gpu_types),
            ("POST", re.compile(rf"/v2/{W}/run"), "api", self.run),
            ("POST", re.compile(rf"/v2/{W}/runsync"), "api", self.runsync),
            ("GET", re.compile(rf"/v2/{W}/status/(?P<jid>[^/]+)"), "api", self.status),
            ("POST", re.compile(rf"/v2/{W}/status/(?P<jid>[^/]+)"), "api", self.status),  # RunPod: GET | POST
            ("GET", re.compile(rf"/v2/{W}/stream/(?P<jid>[^/]+)"), "api", self.stream),
            ("POST", re.compile(rf"/v2/{W}/stream/(?P<jid>[^/]+)"), "api", self.stream),  # RunPod: GET | POST
            ("POST", re.compile(rf"/v2/{W}/cancel/(?P<jid>[^/]+)"), "api", self.cancel),
            ("POST", re.compile(rf"/v2/{W}/retry/(?P<jid>[^/]+)"), "api", self.retry),
            ("POST", re.compile(rf"/v2/{W}/purge-queue"), "api", self.purge_queue),
            ("GET", re.compile(rf"/v2/{W}/health"), "api", self.health),
            ("GET", re.compile(rf"/v2/{W}/job-take/(?P<wid>[^/]+)"), "worker", self.job_take),
            ("GET", re.compile(rf"/v2/{W}/job-take-batch/(?P<wid>[^/]+)"), "worker", self.job_take_batch),
            ("POST", re.compile(rf"/v2/{W}/job-done/(?P<wid>[^/]+)/(?P<jid>[^/]+)"), "worker", self.job_done),
            ("POST", re.compile(rf"/v2/{W}/job-stream/(?P<wid>[^/]+)/(?P<jid>[^/]+)"), "worker", self.job_stream),
            ("GET", re.compile(rf"/v2/{W}/job-stop/(?P<wid>[^/]+)"), "worker", self.job_stop),
            ("GET", re.compile(rf"/v2/{W}/ping/(?P<wid>[^/]+)"), "worker", self.ping),
        ]
        self.job_take_hold_s = cfg.job_take_hold_s

    # ---- dispatch -------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        return self._dispatch(method, target, headers, body)

    def _dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes, unread: int = 0) -> Reply:
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        control = is_control(path)
        allowed = []
        for m, pattern, auth, handler in self.routes:
            match = pattern.fullmatch(path)
            if not match:
                continue
            if m != method:
                allowed.append(m)
                continue
            try:
                self._authorize(auth, headers, control)
                req = Request(method, path, parse_qs(parts.query), headers, body, match.groupdict(), unread)
                return handler(req)
            except EmulatorError as exc:
                return self._error(exc, control)
        if allowed:
            return self._error(EmulatorError(405, "Method Not Allowed", f"{method} is not allowed on {path}"),
                               control, (("Allow", ", ".join(sorted(set(allowed)))),))
        return self._error(EmulatorError(404, "Not Found", f"no such route: {method} {path}"), control)

    def _authorize(self, kind: str, headers: dict[str, str], control: bool) -> None:
        given = headers.get("authorization", "")
        bearer = given.lower().startswith("bearer ")
        token = given[7:] if bearer else given
        valid = {self.api_key} if kind == "api" else {self.worker_token, self.api_key}
        if not token:
            raise EmulatorError(401, "Unauthorized", "missing bearer token")
        if control and not bearer:
            # REST v2 is bearerAuth only (a malformed token is a 401); the SDK's worker calls send the bare key.
            raise EmulatorError(401, "Unauthorized", "malformed Authorization header: send 'Bearer <api key>'")
        if token not in valid:
            raise EmulatorError(401, "Unauthorized", "invalid API key")

    def oversized(self, method: str, target: str, headers: dict[str, str], length: int) -> Reply:
        """A request whose body is over MAX_BODY, left unread. A worker's result that large is over every job's
        payload limit: it is refused as such, so its job fails as RunPod loses it, instead of running on until its
        timeout. Anything else is a 413 (from /run and /runsync, naming their limit)."""
        path = urlsplit(target).path.rstrip("/")
        # /run and /runsync refuse it naming their own payload limit (10 MB, 20 MB), as they do a smaller one over it.
        if method == "POST" and any(handler in (self.job_done, self.run, self.runsync) and pattern.fullmatch(path)
                                    for _, pattern, _, handler in self.routes):
            return self._dispatch(method, target, headers, b"", unread=length)
        return self.refuse(EmulatorError(413, "Payload Too Large",
                                         f"request body must be 0..{MAX_BODY} bytes with a valid Content-Length"), target)

    def refuse(self, exc: EmulatorError, target: str) -> Reply:
        """An error the HTTP shell raises before routing, in the wire format of the plane `target` is on."""
        return self._error(exc, is_control(urlsplit(target).path))

    def _error(self, exc: EmulatorError, control: bool,
               extra: tuple[tuple[str, str], ...] = ()) -> Reply:
        headers = list(extra)
        if exc.retry_after_s is not None:
            headers.append(("Retry-After", str(max(1, int(exc.retry_after_s + 0.999)))))
        if control:
            return Reply(exc.status, responses.problem(exc.status, exc.title, exc.detail, exc.errors),
                         "application/problem+json", tuple(headers))
        # The serverless data plane answers errors as {"error": "..."}.
        return Reply(exc.status, {"error": exc.detail}, headers=tuple(headers))

    # ---- control plane --------------------------------------------------------------------------

    def _validated(self, req: Request, schema: str, write_only: tuple[str, ...] = ()) -> dict[str, Any]:
        """The body, valid against `schema`; a `write_only` field's value never appears in an error."""
        body = req.json()
        if not isinstance(body, dict):
            raise EmulatorError(400, "Bad Request", "request body must be a JSON object")
        errors = schema_errors(component(schema), body)
        if errors:
            for key in write_only:
                if body.get(key) not in (None, ""):
                    secret = body[key]
                    text = secret if isinstance(secret, str) else json.dumps(secret)
                    errors = [e.replace(repr(secret), "'***'").replace(text, "***") for e in errors]
            raise EmulatorError(422, "Unprocessable Entity", "Request validation failed.", errors)
        return body

    def list_endpoints(self, req: Request) -> Reply:
        with self.backend.lock:
            return Reply(200, responses.endpoints(list(self.backend.endpoints.values()), self.data_base))

    def create_endpoint(self, req: Request) -> Reply:
        ep = self.backend.create_endpoint(self._validated(req, "CreateEndpointRequest"))
        with self.backend.lock:
            return Reply(201, responses.endpoint(ep, self.data_base))

    def get_endpoint(self, req: Request) -> Reply:
        with self.backend.lock:
            return Reply(200, responses.endpoint(self.backend.endpoint(req.params["id"]), self.data_base))

    def update_endpoint(self, req: Request) -> Reply:
        ep = self.backend.update_endpoint(req.params["id"], self._validated(req, "UpdateEndpointRequest"))
        with self.backend.lock:
            return Reply(200, responses.endpoint(ep, self.data_base))

    def delete_endpoint(self, req: Request) -> Reply:
        stops = self.backend.delete_endpoint(req.params["id"])
        self.on_stops(stops)
        return Reply(204)

    def on_stops(self, stops: list[Any]) -> None:  # replaced by the emulator with the fleet's apply
        pass

    def list_releases(self, req: Request) -> Reply:
        with self.backend.lock:
            return Reply(200, responses.releases(self.backend, self.backend.endpoint(req.params["id"])))

    def list_workers(self, req: Request) -> Reply:
        with self.backend.lock:
            ep = self.backend.endpoint(req.params["id"])
            return Reply(200, responses.workers(self.backend, ep, self.backend.config.gpu_type))

    def list_registries(self, req: Request) -> Reply:
        with self.backend.lock:
            return Reply(200, responses.registries(list(self.backend.registries.values())))

    def create_registry(self, req: Request) -> Reply:
        body = self._validated(req, "CreateRegistryRequest", write_only=("username", "password"))
        return Reply(201, responses.registry(self.backend.create_registry(body)))

    def get_registry(self, req: Request) -> Reply:
        with self.backend.lock:
            return Reply(200, responses.registry(self.backend.registry(req.params["id"])))

    def delete_registry(self, req: Request) -> Reply:
        self.backend.delete_registry(req.params["id"])
        return Reply(204)

    def list_gpu_types(self, req: Request) -> Reply:
        """The catalog; its query as the spec's parameters say: availability needs include=AVAILABILITY and a
        product, the availability filters are valid only with it (400), a malformed value is a 422."""
        query = {k: [x for v in vs for x in v.split(",")] for k, vs in req.query.items()}
        errors = [f"{name}: {value!r} is not one of {allowed}" for name, allowed in _CATALOG_ENUMS.items()
                  for value in query.get(name, []) if value not in allowed]
        errors += [f"{name}: {value!r} does not match {pattern.pattern!r}" for name, pattern in _CATALOG_PATTERNS.items()
                   for value in query.get(name, []) if not pattern.fullmatch(value)]
        if errors:
            raise EmulatorError(422, "Unprocessable Entity", "Request validation failed.", errors)
        availability = "AVAILABILITY" in query.get("include", [])
        if availability and "product" not in query:
            raise EmulatorError(400, "Bad Request", "product is required with include=AVAILABILITY: availability "
                                                    "differs by product (POD, CLUSTER, SERVERLESS)")
        misplaced = [name for name in ("product", "countryCodes", "cudaVersions", "minCudaVersion") if name in query]
        if misplaced and not availability:
            raise EmulatorError(400, "Bad Request", f"{', '.join(misplaced)}: valid only with include=AVAILABILITY "
                                                    "(add it, with a product, or leave them out)")
        if "cudaVersions" in query and "minCudaVersion" in query:
            raise EmulatorError(400, "Bad Request", "cudaVersions and minCudaVersion are mutually exclusive: "
                                                    "send one")
        return Reply(200, responses.gpu_types(availability))

    # ---- data plane -----------------------------------------------------------------------------

    def run(self, req: Request) -> Reply:
        job = self.backend.submit(req.params["eid"], req.json(), req.unread or len(req.body))
        with self.backend.lock:
            return Reply(200, responses.job_accepted(job))

    def runsync(self, req: Request) -> Reply:
        wait_s = self.backend.config.runsync_wait_s
        if "wait" in req.query:
            try:
                wait_s = min(300.0, max(1.0, int(req.query["wait"][0]) / 1000.0))
            except ValueError:
                raise EmulatorError(400, "Bad Request", "wait must be an integer number of milliseconds") from None
        job = self.backend.submit(req.params["eid"], req.json(), req.unread or len(req.body), sync=True)
        job = self.backend.wait_terminal(req.params["eid"], job.id, wait_s)
        with self.backend.lock:
            return Reply(200, responses.job_status(job))

    def status(self, req: Request) -> Reply:
        self.backend.limit(req.params["eid"], "status")
        with self.backend.lock:
            return Reply(200, responses.job_status(self.backend.job(req.params["eid"], req.params["jid"])))

    def stream(self, req: Request) -> Reply:
        job, chunks = self.backend.read_stream(req.params["eid"], req.params["jid"])
        with self.backend.lock:
            return Reply(200, responses.job_stream(job, chunks))

    def cancel(self, req: Request) -> Reply:
        job = self.backend.cancel(req.params["eid"], req.params["jid"])
        with self.backend.lock:
            return Reply(200, responses.job_accepted(job))

    def retry(self, req: Request) -> Reply:
        job = self.backend.retry(req.params["eid"], req.params["jid"])
        with self.backend.lock:
            return Reply(200, responses.job_accepted(job))

    def purge_queue(self, req: Request) -> Reply:
        return Reply(200, {"removed": self.backend.purge_queue(req.params["eid"]), "status": "completed"})

    def health(self, req: Request) -> Reply:
        return Reply(200, self.backend.health(req.params["eid"]))

    # ---- worker URLs (runpod SDK, cloud mode) ---------------------------------------------------

    def job_take(self, req: Request) -> Reply:
        jobs = self.backend.take(req.params["eid"], req.params["wid"], 1, self.job_take_hold_s)
        return Reply(200, jobs[0]) if jobs else Reply(204)

    def job_take_batch(self, req: Request) -> Reply:
        try:
            size = max(1, min(100, int(req.query.get("batch_size", ["1"])[0])))
        except ValueError:
            raise EmulatorError(400, "Bad Request", "batch_size must be an integer") from None
        jobs = self.backend.take(req.params["eid"], req.params["wid"], size, self.job_take_hold_s)
        return Reply(200, jobs) if jobs else Reply(204)

    def job_done(self, req: Request) -> Reply:
        body = None if req.unread else req.json()
        self.backend.done(req.params["eid"], req.params["wid"], req.params["jid"], body, req.unread or len(req.body))
        return Reply(200, {})

    def job_stream(self, req: Request) -> Reply:
        self.backend.streamed(req.params["eid"], req.params["wid"], req.params["jid"], req.json())
        return Reply(200, {})

    def job_stop(self, req: Request) -> Reply:
        ids = self.backend.stop_signals(req.params["eid"], req.params["wid"], self.job_take_hold_s)
        return Reply(200, {"jobsToStop": ids}) if ids else Reply(204)

    def ping(self, req: Request) -> Reply:
        self.backend.ping(req.params["eid"], req.params["wid"])
        return Reply(200, {})


def is_control(path: str) -> bool:
    parts = path.split("/")
    return len(parts) > 2 and parts[1] == "v2" and parts[2] in CONTROL_COLLECTIONS


class _HTTPHandler(ReadDeadlines, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    idle_timeout_s, request_timeout_s, write_timeout_s = IDLE_TIMEOUT_S, REQUEST_TIMEOUT_S, WRITE_TIMEOUT_S
    # Headers and body are two writes: with Nagle on, the body of every answer on a kept-alive connection
    # (the SDK's job-done and ping, a client's status reads) waits for the client's delayed ACK, ~40 ms.
    disable_nagle_algorithm = True
    server: RunPodHTTPServer

    def timed_out(self) -> None:
        self._answer(self.server.app.refuse(EmulatorError(
            408, "Request Timeout", f"the request did not arrive whole within {self.request_timeout_s:g} s of its "
                                    "first byte: send the header block and the whole body at once"), self.path))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server refuses itself (a malformed request line, 414, 431, 505) in the emulator's wire
        format, not its HTML page."""
        self.close_connection = True
        # A request line it could not parse leaves HTTP/0.9 set, whose answers have no status line or headers; a
        # client that sent such a line speaks no HTTP/0.9 either, and is told why in an HTTP/1.1 answer.
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.1"
        try:
            title = HTTPStatus(code).phrase
        except ValueError:
            title = "Error"
        self._answer(self.server.app.refuse(EmulatorError(int(code), title, message or title), self.path or "/"))

    def __getattr__(self, name: str) -> Any:
        # Every method reaches the route table (http.server answers the ones it has no do_ for with an HTML 501):
        # a known path answers 405 with its Allow, an unknown one 404, in the JSON of its plane.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        lengths = {value.strip() for value in self.headers.get_all("Content-Length") or ()}
        try:
            # Two different lengths: whichever is taken, the rest of the body would be read as the next request.
            length = int(lengths.pop() if lengths else "0") if len(lengths) <= 1 else -1
        except ValueError:
            length = -1
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            # Chunked bodies are not decoded: taken as empty, the request would be misjudged and its chunks
            # read as the next request on the connection.
            self.close_connection = True
            reply = self.server.app.refuse(EmulatorError(
                411, "Length Required", "send the request body with a Content-Length (chunked bodies are not "
                                        "accepted by the local emulator)"), self.path)
        elif length < 0:
            self.close_connection = True
            reply = self.server.app.refuse(EmulatorError(
                400, "Bad Request", f"request body must be 0..{MAX_BODY} bytes with a valid Content-Length"), self.path)
        else:
            try:
                reply = self._routed(length)
            except Exception as exc:  # noqa: BLE001 -- the emulator must answer, never drop the connection
                if isinstance(exc, TimeoutError) and self.reader.expired:  # the body stopped coming
                    self.answer_timed_out()
                    return
                self.server.app.log.error("http.internal_error", path=urlsplit(self.path).path,
                                          error=f"{type(exc).__name__}: {exc}")
                reply = self.server.app.refuse(EmulatorError(
                    500, "Internal Server Error", "internal emulator error; see the emulator log"), self.path)
        self._answer(reply)

    def _answer(self, reply: Reply) -> None:
        payload = b"" if reply.body is None or reply.status == 204 else json.dumps(reply.body).encode()
        self.connection.settimeout(self.write_timeout_s)
        self.send_response(reply.status)
        if self.close_connection:
            # Say so: a client that pools connections would otherwise send its next request into a closed one.
            self.send_header("Connection", "close")
        if payload:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in reply.headers:
            self.send_header(k, v)
        self.end_headers()
        if payload and self.command != "HEAD":  # an answer to HEAD has no body, whatever its length says
            self.wfile.write(payload)

    def _routed(self, length: int) -> Reply:
        headers = {k.lower(): v for k, v in self.headers.items()}
        if length > MAX_BODY:  # never read: the connection is closed after the answer
            self.close_connection = True
            return self.server.app.oversized(self.command, self.path, headers, length)
        body = self.rfile.read(length) if length else b""
        return self.server.app.handle(self.command, self.path, headers, body)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines could carry a webhook signature in a query; the app logs what matters


class RunPodHTTPServer(WokenOnShutdown, ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog. socketserver's default of 5 overflowed under a burst of creates: the service opens up to
    # 64 connections to RunPod at once (service/httpx_transport.py), and the connections the kernel's accept queue
    # had no room for were dropped, so their POST /run failed with an unknown outcome (the service's 503
    # runpod_unavailable, the job failed and its key held) for work RunPod never saw. The kernel caps it at
    # net.core.somaxconn; the service's own socket asks for 2048 (service/sockets.py).
    request_queue_size = 1024

    def __init__(self, host: str, port: int, app: RunPodApp) -> None:
        self.app = app
        super().__init__((host, port), _HTTPHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (a worker killed during a long-poll) is normal here.
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        self.app.log.error("http.connection_error", error=f"{type(exc).__name__}: {exc}")
