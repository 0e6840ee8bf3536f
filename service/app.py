"""The core application: the route table, request limits, error shaping and request logs.

`create_app(config, db, store, runpod)` is what every runtime builds; `await app.handle(request)`
answers one request. The service never polls RunPod: there is no timer, loop or background task
here; a job without its webhook is recovered by POST /api/admin/recover/<job_id>, and a client stops
a job it no longer wants with POST /api/cancel/<job_id>.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from service import cancel, joblist, jobs, ratelimit, recover, routes
from service.config import ServiceConfig
from service.http import (
    ApiError,
    Request,
    Response,
    declares_over,
    json_response,
    resolve_path,
    traceparent_trace_id,
)
from service.logs import Logger, Sink, error_field, failure_logged, stdout_sink
from service.ports import (
    Database,
    RateLimit,
    ResultStore,
    RunPodGateway,
    StorageBusy,
    StorageFull,
    StorageGone,
)
from service.signing import SignedWith, bearer_caller, result_signed_with, webhook_signed_with
from service.transitions import Pricing, Transitions
from service.workflows import Registry

Handler = Callable[..., Awaitable[Response]]

WEBHOOK_PATH = "/api/runpod/webhook"
INPUTS_PATH = "/api/inputs"
_RUNPOD_RUN_LIMIT = 10 * 1024 * 1024  # RunPod refuses a larger /run body: no larger input can come back
_WEBHOOK_ROOM = 1024 * 1024  # the outcome beside it: output (result keys, timings), error text, ids, the URL
# A full database stays full until an operator makes room (prunes old jobs, frees disk): minutes, not seconds.
STORAGE_FULL_RETRY_AFTER_S = 60
# A lock another process holds (a prune's batch, a shell left in a transaction) passes in seconds.
DATABASE_BUSY_RETRY_AFTER_S = 5


def webhook_body_limit(max_body_bytes: int) -> int:
    """The webhook's own body limit. RunPod echoes the job's `input` (the client's inputs, each byte sent at
    most a 6-byte \\u escape, and never over RunPod's /run limit) beside the outcome: cut at the client's
    limit, a finished job's webhook would be refused with 413 and its outcome lost."""
    return min(6 * max_body_bytes, _RUNPOD_RUN_LIMIT) + _WEBHOOK_ROOM


ROUTES: tuple[tuple[str, re.Pattern[str], Handler], ...] = (
    ("GET", re.compile(r"^/healthz$"), routes.health),
    ("GET", re.compile(r"^/api/workflows$"), routes.list_workflows),
    ("POST", re.compile(r"^/api/queue/create$"), routes.create_job),
    ("POST", re.compile(f"^{INPUTS_PATH}$"), routes.upload_input),
    ("POST", re.compile(f"^{WEBHOOK_PATH}$"), routes.runpod_webhook),
    ("GET", re.compile(r"^/api/status/(?P<job_id>[^/]{1,200})$"), routes.job_status),
    ("GET", re.compile(r"^/api/result/(?P<key>.{1,1000})$"), routes.result_object),
    ("POST", re.compile(r"^/api/admin/recover/(?P<job_id>[^/]{1,200})$"), recover.recover_job),
    ("POST", re.compile(r"^/api/cancel/(?P<job_id>[^/]{1,200})$"), cancel.cancel_job),
    ("GET", re.compile(r"^/api/metrics$"), routes.metrics_report),
    ("GET", re.compile(r"^/api/jobs$"), joblist.list_jobs),
)

# Routes without parameters, by path (their patterns above are ^literal$).
_STATIC: dict[str, tuple[str, Handler]] = {
    pattern.pattern[1:-1]: (method, handler) for method, pattern, handler in ROUTES if "(" not in pattern.pattern}


class App:
    def __init__(self, config: ServiceConfig, db: Database, store: ResultStore, runpod: RunPodGateway,
                 registry: Registry, log: Logger, clock: Callable[[], float] = time.time,
                 rate_limits: Mapping[str, RateLimit] | None = None) -> None:
        self.config = config
        self.db = db
        self.store = store
        self.runpod = runpod
        self.registry = registry
        self.log = log
        self.clock = clock
        self.transitions = Transitions(db, store, Pricing(config.gpu_type, config.gpu_count,
                                                          config.price_per_gpu_second, config.worker_image_tag), log,
                                       config.daily_spend_limit_usd, config.client_daily_spend_limit_usd)
        self._base = config.public_base_url.rstrip("/")
        self._webhook_body_limit = webhook_body_limit(config.max_body_bytes)
        # Each limited route's limit (the config's), counted by the runtime's counter (the Worker's bindings), or
        # in process when the runtime gives none. A route the config or the runtime gives no limit has none.
        per_minute = {route: getattr(config, key) for route, key in ratelimit.CONFIG_KEYS.items()}
        self.rate_limits = ratelimit.limits_in_process(per_minute, clock) if rate_limits is None else {
            route: ratelimit.RouteLimit(route, per_minute[route], counter) for route, counter in rate_limits.items()
            if per_minute.get(route) is not None}

    @property
    def max_body_bytes(self) -> int:
        return self.config.max_body_bytes

    @property
    def least_body_limit(self) -> int:
        """The smallest body_limit of any request: a runtime may read this much before it asks body_limit.
        (A signed webhook's limit is the larger one, unless max_body_bytes is set above RunPod's /run limit.)"""
        return min(self.config.max_body_bytes, self._webhook_body_limit, self.config.max_input_bytes)

    def body_limit(self, path: str, query_string: str, authorization: str | None = None,
                   method: str = "POST") -> int:
        """The most body bytes a `method` request to `path` (raw) with `query_string` and `authorization` (its field)
        may carry; runtime adapters stop reading past it. Only a signed webhook delivery gets the webhook's larger
        limit, and only an image upload with the bearer token the upload's: an anonymous caller cannot make the
        service read megabytes, nor the token's holder by another method than the upload's (answered 405)."""
        if resolve_path(path) == WEBHOOK_PATH and self._signed_webhook_job(Request("POST", path, query_string)):
            return self._webhook_body_limit
        if self.is_upload(method, path, authorization):
            return self.config.max_input_bytes
        return self.config.max_body_bytes

    def is_upload(self, method: str, path: str, authorization: str | None) -> bool:
        """Whether a `method` request to `path` (raw) with `authorization` (its field) is an image upload the bearer
        token allows: a POST, the one request whose body may be max_input_bytes (the Worker bounds how many it reads
        at once). A PUT or GET there is refused with 405 whatever its body: reading megabytes of it first (on the
        Worker, out of the uploads' budget) would be for nothing."""
        return method == "POST" and resolve_path(path) == INPUTS_PATH and routes.bearer_holds(self, authorization)

    def caller(self, authorization: str | None) -> str | None:
        """Who an Authorization field authenticates: "current" or "previous" (the API token), "client:<name>" (a
        named client's token), or None (signing.bearer_caller)."""
        return bearer_caller(self.config.api_token, self.config.api_token_previous, self.config.client_tokens,
                             authorization)

    async def within_rate(self, route: str, token: str) -> ApiError | None:
        """Count a request to `route` (ratelimit.CREATE or INPUTS) made by `token` (the API token, "current" or
        "previous", or a named client, "client:<name>", each its own budget): None while it is
        within the route's limit (or the route has none), else the 429 to answer. A counter that fails (the
        binding threw, hung or answered neither true nor false) lets the request through: the limit guards against a
        runaway client, and must not take the API down with it; the request's line says so in
        `data.rate_limit_error`."""
        limit = self.rate_limits.get(route)
        if limit is None:
            return None
        return ratelimit.refusal(limit) if await self._counted(limit, token) is False else None

    async def _counted(self, limit: ratelimit.RouteLimit, token: str) -> bool | None:
        """Whether the request is within `limit` (it is counted), or None when the counter failed: it threw, gave
        no answer within ratelimit.COUNT_TIMEOUT_S, or another than true or false (said on the request's line,
        `data.rate_limit_error`)."""
        try:
            return await ratelimit.counted(limit, token)
        except Exception as exc:  # noqa: BLE001 - any failure of the counter: the request goes through
            self.log.annotate_data(rate_limit_error=error_field(exc))
            return None

    async def count_upload(self, method: str, path: str, authorization: str | None,
                           traceparent: str | None = None) -> Response | bool:
        """For a runtime adapter, before it reads a request's body: an image upload the bearer token allows is
        counted against its rate limit here, so that one over it is answered 429 (the Response returned, its
        request's one line written, naming the trace of a valid `traceparent` field as `handle` does) with nothing
        of its body read. True when the upload was counted and is within its limit: the adapter hands the core the
        request with `rate_counted` set, so it is not counted twice. False when nothing was counted (any other
        request, a route without a limit, or a counter that failed: the core asks again, and its request's line
        says what failed)."""
        if not self.is_upload(method, path, authorization):
            return False
        token = self.caller(authorization)
        limit = self.rate_limits.get(ratelimit.INPUTS)
        if token is None or limit is None:
            return False
        started = time.perf_counter()
        with self.log.request_line() as note:
            within = await self._counted(limit, token)
            if within is not False:
                return bool(within)
            trace_id = traceparent_trace_id(traceparent)
            if trace_id is not None:
                note["trace_id"] = trace_id
            routes.annotate_caller(self, token)
            try:
                routes.refuse_upload_over_rate(self, ratelimit.refusal(limit))
            except ApiError as exc:
                response = exc.to_response()
        self.log.write_request_line(note, duration_ms=round((time.perf_counter() - started) * 1000, 3),
                                    http={"method": method[:16], "path": resolve_path(path)[:512],
                                          "status": response.status})
        return response

    def _signed_webhook_job(self, request: Request) -> str | None:
        """The job id of a webhook request whose signature holds, else None."""
        job_id = request.query("job") or ""
        if jobs.JOB_ID.match(job_id) and self.webhook_signed_with(job_id, request.query("sig")) is not None:
            return job_id
        return None

    def webhook_signed_with(self, job_id: str, sig: str | None) -> SignedWith | None:
        """Which webhook secret signed `job_id`'s webhook URL: the current one, the previous one (while it is
        rotated), or None."""
        return webhook_signed_with(self.config.webhook_secret, self.config.webhook_secret_previous, job_id, sig)

    def result_signed_with(self, key: str, exp: str | None, sig: str | None) -> SignedWith | None:
        """As webhook_signed_with, for a result URL (None too once it has expired)."""
        return result_signed_with(self.config.webhook_secret, self.config.webhook_secret_previous, key, exp, sig,
                                  self.clock())

    def webhook_url(self, job_id: str) -> str:
        return f"{self._base}/api/runpod/webhook?{routes.webhook_query(self.config.webhook_secret, job_id)}"

    def result_url(self, key: str, expires: int) -> str:
        query = routes.signed_result_query(self.config.webhook_secret, key, expires)
        return f"{self._base}{routes.result_path(key)}?{query}"

    async def handle(self, request: Request) -> Response:
        """Answer one request; exactly one log line per request (events fold into it)."""
        started = time.perf_counter()
        path = resolve_path(request.path)
        if path != request.path:
            request = dataclasses.replace(request, path=path)
        with self.log.request_line() as note:
            # The caller's trace names the line whatever its answer: a refused request (a 400, 401, 413, 429) makes
            # no job, and its line is how an operator joins the client's failed call to the client's own trace. A
            # line about a job (a status read, a replayed create) takes that job's trace instead.
            if request.client_trace_id is not None:
                note["trace_id"] = request.client_trace_id
            try:
                response = await self._dispatch(request)
            except ApiError as exc:
                response = exc.to_response()
                # A refused request's line says why (the code the client got): many 400s on create are one bad
                # client's `missing_input`, many 401s a wrong token; a handler's own event keeps its reason.
                note.setdefault("reason", exc.code)
                if exc.status >= 500 and not failure_logged(note):
                    self.log.error("http.refused", reason=exc.code, message=exc.message)
            except (StorageFull, StorageBusy, StorageGone) as exc:
                response = self._write_refused(exc)
            except Exception as exc:  # noqa: BLE001 - last line of defence: a JSON 500, never a traceback
                if not failure_logged(note):
                    self.log.error("http.unhandled", error=error_field(exc))
                response = json_response(500, {"error": {"code": "internal", "message":
                                                         "internal error; the service log has the details"}})
        if request.method == "HEAD":
            response = _without_body(response)
        # the path only: query strings carry signatures (webhook and result URLs)
        self.log.write_request_line(note, duration_ms=round((time.perf_counter() - started) * 1000, 3),
                                    http={"method": request.method[:16], "path": request.path[:512],
                                          "status": response.status})
        return response

    def _write_refused(self, exc: StorageFull | StorageBusy | StorageGone) -> Response:
        """A 503 for a write the database refused whole: nothing of it was kept, so a create reached no RunPod and
        a webhook's outcome is RunPod's to send again. One event per kind, for the operator to alert on."""
        if isinstance(exc, StorageFull):
            return self._storage_full(exc)
        if isinstance(exc, StorageBusy):
            self.log.error("database.busy", reason="database_busy", error=error_field(exc),
                           message="the database could not take the request in time, so it was refused (locally: "
                                   "another process held its write lock past the busy timeout, e.g. a `goldgate "
                                   "prune` or a `sqlite3` shell left in a transaction; on the Worker: an error D1 "
                                   "lists as transient); docs/LOG_EVENTS.md, database.busy")
            return ApiError(503, "database_busy", "the service's database is busy, so this request could not be "
                                                  "recorded; retry it shortly",
                            retry_after=str(DATABASE_BUSY_RETRY_AFTER_S)).to_response()
        # The service's connection is the last handle on a deleted file: a copy of it is saved once, before a
        # `goldgate down` closes it and every write since the last backup is lost (data.rescued names it).
        rescue = getattr(self.db, "rescue_copy", None)
        rescued, unsaved = rescue() if rescue is not None else (None, None)
        kept = (f"a copy of the database it still has open is saved at {rescued}: restore from it "
                "(docs/D1_DISASTER_RECOVERY.md, \"The database file was deleted\")" if rescued else
                f"no copy of the database it still has open could be saved ({unsaved})" if unsaved else None)
        self.log.log("critical", "database.gone", reason="database_unavailable", error=error_field(exc),
                     message="the database file was deleted or replaced while the service ran: no write is taken "
                             "until the database is restored and the service restarted on it (local: `goldgate down "
                             "<stack>`, the saved copy moved into the database's place, then `goldgate up <stack>`, "
                             "which refuses to start on a new, empty database); "
                             + (f"{kept}; " if kept else "") + "docs/LOG_EVENTS.md, database.gone",
                     data={"rescued": rescued, "rescue_error": unsaved} if rescue is not None else None)
        return ApiError(503, "database_unavailable", "the service cannot write to its database, so this request "
                                                     "could not be recorded; retry it later",
                        retry_after=str(STORAGE_FULL_RETRY_AFTER_S)).to_response()

    def _storage_full(self, exc: StorageFull) -> Response:
        """A 503 the client retries later, for a write the database refused for lack of space. The write
        failed whole (a statement or batch is one transaction): a create's job was not written and reached no
        RunPod; a webhook's outcome is RunPod's to send again, which it does for any answer but a 200. The
        line is `database.full` whichever handler failed (the job it names stays on it): one event for the
        operator to alert on, since writes keep failing until room is made. Not a 500: the service is sound,
        its storage full."""
        self.log.log("critical", "database.full", reason="storage_full", error=error_field(exc),
                     message="the database refused a write for lack of space, and refuses writes until room "
                             "is made: free disk space under the stack's home (local), or delete old jobs "
                             "with `goldgate prune <stack> --keep-days N` (D1 holds at most 10 GB); "
                             "docs/RUNBOOK.md, \"The database is full\"")
        return ApiError(503, "storage_full", "the service's database is full, so this request could not be "
                                             "recorded; retry it later",
                        retry_after=str(STORAGE_FULL_RETRY_AFTER_S)).to_response()

    async def _dispatch(self, request: Request) -> Response:
        # The webhook route checks its signature first, then its larger limit; an upload its token, then its own.
        if request.path not in (WEBHOOK_PATH, INPUTS_PATH):
            await self.check_body_size(request)
        return await self._route(request)

    async def check_body_size(self, request: Request, signed_job: str | None = None) -> None:
        """A 413 for a body over the request's limit: a signed webhook's (for `signed_job`) is the larger one,
        and refusing it loses RunPod's outcome for the job, so that is logged as an error to recover it."""
        limit = self.config.max_body_bytes if signed_job is None else self._webhook_body_limit
        if len(request.body) > limit or declares_over(request.header("content-length"), limit):
            if signed_job is not None:
                self.log.bind(**await routes.job_context(self, signed_job)).error(
                    "webhook.body_too_large", reason="body_too_large",
                    message=f"a webhook body over {limit} bytes was refused; recover the job")
            raise ApiError(413, "body_too_large", f"request body is over the {limit}-byte limit")

    async def _route(self, request: Request) -> Response:
        wanted = "GET" if request.method == "HEAD" else request.method  # HEAD is GET without the body
        static = _STATIC.get(request.path)
        if static is not None and static[0] == wanted:  # the hot routes: one dict lookup
            return await static[1](self, request)
        allowed: list[str] = []
        for method, pattern, handler in ROUTES:
            match = pattern.match(request.path)
            if match is None:
                continue
            if wanted != method:
                allowed.extend(("GET", "HEAD") if method == "GET" else (method,))
                continue
            return await handler(self, request, **match.groupdict())
        if allowed:
            raise ApiError(405, "method_not_allowed", f"{request.method[:16]} is not allowed here; use "
                                                      f"{', '.join(allowed)}", allow=", ".join(allowed))
        raise ApiError(404, "not_found", "no such route")


def _without_body(response: Response) -> Response:
    """The answer to a HEAD (RFC 9110 9.3.2): GET's status and headers, with the Content-Length of the
    body GET would send, and no body. Handlers that stream (results) read no body for HEAD."""
    headers = dict(response.headers)
    if isinstance(response.body, (bytes, bytearray)) and response.status not in (204, 304):
        headers.setdefault("content-length", str(len(response.body)))
    return Response(response.status, b"", headers)


def create_app(config: ServiceConfig, db: Database, store: ResultStore, runpod: RunPodGateway,
               registry: Registry | None = None, log_sink: Sink = stdout_sink,
               clock: Callable[[], float] = time.time, rate_limits: Mapping[str, RateLimit] | None = None) -> App:
    """The service over the given ports. The registry defaults to `config.workflows_dir`; log lines
    go to `log_sink` (one JSON string per call), with the config's secrets masked as a last guard. `rate_limits`:
    the runtime's counter of each limited route (ratelimit.CREATE, INPUTS); None counts them in process."""
    if registry is None:
        if not config.workflows_dir:
            raise ValueError("no workflows: set workflows_dir in the service config or pass a Registry")
        registry = Registry.from_dir(config.workflows_dir)
    secrets = (config.api_token, config.webhook_secret, config.webhook_secret_previous or "", config.runpod_api_key,
               config.s3_secret_access_key or "", config.api_token_previous or "")
    log = Logger(log_sink, secrets=secrets, stack=config.stack, worker_image_tag=config.worker_image_tag,
                 workflow_version=config.workflow_version)
    return App(config, db, store, runpod, registry, log, clock, rate_limits)
