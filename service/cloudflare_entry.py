"""The Cloudflare Python Worker entry: adapts D1, R2 and fetch to the core's ports. Kept thin.

Bindings (infra/components/api.py): D1 `DB`, R2 `RESULTS`, secret_text `API_TOKEN`,
`WEBHOOK_SECRET`, `RUNPOD_API_KEY`, `WEBHOOK_SECRET_PREVIOUS` (only while the webhook secret is
rotated; absent or empty: none), `API_TOKEN_PREVIOUS` (only while the API token is rotated; the same),
plain_text settings named after the ServiceConfig keys upper-cased (values are strings; numbers are
parsed here), and the Workers Rate Limiting bindings `RATE_LIMIT_CREATE` and `RATE_LIMIT_INPUTS` (type `ratelimit`:
absent, as on a Worker deployed before them, the route has no limit and the isolate's first request logs
`service.rate_limit_unbound`), and `CLIENT_TOKENS` (secret_text, only when the stack names clients: JSON of each
client's name -> the sha256 hex of its token, service/clients.py; the clients past the 5 KB Cloudflare takes in one
go on, in name order, in `CLIENT_TOKENS_2` and `CLIENT_TOKENS_3`, all merged; a bad one is said once an isolate,
`service.client_tokens_refused`, and refuses every client token but not the API token). Workflows come from the
generated top-level module `bundled_workflows` (`WORKFLOWS`: file name -> JSON text). The Worker never migrates D1
(Pulumi does) and never polls RunPod. Its Cron Trigger (declared only when the stack sets database.retention) calls
`Default.scheduled`, which prunes D1 as `goldgate prune` does, a bounded part per run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import fields
from typing import Any
from urllib.parse import urlsplit

from service import ratelimit, retention
from service.app import App, create_app
from service.clients import BINDINGS as CLIENT_TOKENS_BINDINGS
from service.clients import ClientTokensError, hashes_from_bindings
from service.config import MAX_DAILY_SPEND_LIMIT_USD, ConfigError, ServiceConfig, daily_spend_limit_ok
from service.http import ApiError, Request, Response, declares_over, json_response, traceparent_trace_id
from service.logs import Logger, error_field, stdout_sink
from service.ports import (
    HttpReply,
    ObjectMeta,
    ObjectTooLarge,
    Statement,
    StatementResult,
    StorageBusy,
    StorageFull,
    StoredObject,
    StoreUnavailable,
    TransportError,
    WriteRefusal,
)
from service.runpod import HttpRunPodGateway
from service.workflows import Registry, WorkflowError

try:  # present in the Workers runtime; tests install stand-ins with the same call shapes
    from workers import Response as WorkersResponse
    from workers import WorkerEntrypoint
except ImportError:  # pragma: no cover - plain CPython without the stand-in
    WorkersResponse = None
    WorkerEntrypoint = object

try:
    from pyodide.ffi import JsException, create_once_callable, create_proxy, to_js
except ImportError:  # pragma: no cover
    JsException = Exception

    def to_js(value: Any, **_: Any) -> Any:
        return value

    def create_once_callable(function: Any) -> Any:
        return function

    create_proxy = create_once_callable

try:  # Pyodide >= 0.28 only: the Python 3.12 runtimes (Pyodide 0.26, 0.27) have no jsnull
    from pyodide.ffi import jsnull
except ImportError:
    jsnull = None

DB_BINDING = "DB"
RESULTS_BINDING = "RESULTS"
# Each limited route's Workers Rate Limiting binding (infra/components/api.py declares them).
# The stack's api.daily_spend_limit_usd (plain text): read apart from the other settings (spend_limit_from_env).
SPEND_LIMIT_BINDING = "DAILY_SPEND_LIMIT_USD"
# The stack's api.client_daily_spend_limit_usd (plain text): read alike, a bad one set aside alike.
CLIENT_SPEND_LIMIT_BINDING = "CLIENT_DAILY_SPEND_LIMIT_USD"
# Each spend limit's binding -> (its config key, its spec field), for spend_limit_from_env and its line.
SPEND_LIMIT_BINDINGS = {SPEND_LIMIT_BINDING: ("daily_spend_limit_usd", "api.daily_spend_limit_usd"),
                        CLIENT_SPEND_LIMIT_BINDING: ("client_daily_spend_limit_usd", "api.client_daily_spend_limit_usd")}
RATE_LIMIT_BINDINGS = {ratelimit.CREATE: "RATE_LIMIT_CREATE", ratelimit.INPUTS: "RATE_LIMIT_INPUTS"}
_LOCAL_ONLY = {"host", "port", "db_path", "s3_endpoint_url", "s3_bucket", "s3_access_key_id",
               "s3_secret_access_key", "apply_migrations_from", "workflows_dir"}
# The named clients' hashes (service/clients.py): secret_texts of JSON {name: sha256 hex}, the first and as many
# more as the clients need (CLIENT_TOKENS_BINDINGS), read apart from the config (client_tokens_from_env) so that a bad one
# refuses the clients' tokens, never the operator's.
CLIENT_TOKENS_BINDING = CLIENT_TOKENS_BINDINGS[0]


def _missing(value: Any) -> bool:
    return value is None or (jsnull is not None and value is jsnull)


def _py(value: Any) -> Any:
    return value.to_py() if hasattr(value, "to_py") else value


# How a D1 binding's error names a database at its size limit (10 GB on Workers Paid), lower-cased.
# Cloudflare's D1 docs (Limits; Debug D1) give the limit and the `D1_ERROR` prefix, but not this error's text:
# the text is the one reported from production Workers ("D1_ERROR: Exceeded maximum DB size", code 7500 over
# the REST API, where 7500 is any query error), and SQLite's own SQLITE_FULL text, which D1 passes through for
# SQLite's errors ("D1_ERROR: <sqlite message>: SQLITE_<CODE>"). Anything else stays the error it was (a 500
# naming it).
D1_FULL = ("exceeded maximum db size", "sqlite_full", "database or disk is full")
# The D1_ERRORs of Cloudflare's "Debug D1" page that pass, lower-cased. Its recommended action "Retry the operation":
# the Durable Object that holds the database restarted (its code was updated, or it failed to start, or an internal
# error in its storage reset it: "... storage caused object to be reset"), the network to it was lost, or it could
# not be reached ("Cannot resolve D1 DB due to transient issue on remote node."). Its "App action: ... send fewer
# requests by spreading the load over time": "D1 DB is overloaded. Requests queued for too long." / "... Too many
# requests queued." (the request was never run), and "D1 DB storage operation exceeded timeout which caused object
# to be reset." (a long storage operation reset the object, which rejects every request pending on it). To a client
# each is the 503 that says retry shortly, not the 500 of a bug. D1 retries a read-only query itself; a write it
# leaves to the caller. (Its memory and CPU resets stay errors: a query's own cost causes them, and would again.)
D1_TRANSIENT = ("d1 db reset because its code was updated", "storage caused object to be reset",
                "network connection lost", "cannot resolve d1 db due to transient issue on remote node",
                "d1 db is overloaded", "storage operation exceeded timeout which caused object to be reset")


def _raise_if_full(exc: BaseException) -> None:
    """StorageFull (from `exc`) when the D1 error `exc` says the database is full; StorageBusy when it is one of
    D1's transient errors: the client (and RunPod, for a webhook) is told to retry shortly, as D1 advises, not
    given the 500 of a bug."""
    message = _js_message(exc)
    lowered = message.lower()
    if any(marker in lowered for marker in D1_FULL):
        raise StorageFull(f"the D1 database is full ({message}); delete old jobs (`goldgate prune`) to make "
                          "room: nothing of this write was kept") from exc
    if any(marker in lowered for marker in D1_TRANSIENT):
        # A lost connection may have lost the answer, not the write: the retry meets what was kept (a webhook's
        # fingerprint, a create's Idempotency-Key).
        raise StorageBusy(f"D1 failed transiently ({message}), an error Cloudflare's Debug D1 page lists as passing: "
                          "retry shortly") from exc


class D1Database:
    """The Database port over a D1 binding: prepare/bind/all/run, batch = one transaction. A D1 error saying
    the database is at its size limit is StorageFull, one D1 lists as transient StorageBusy; any other is raised
    as it came."""

    def __init__(self, binding: Any) -> None:
        self.binding = binding
        # This isolate's last refused write, until one succeeds: what GET /healthz reports (D1 has no cheap
        # "is it full" probe; another isolate of the Worker knows only its own).
        self.last_write_refusal: WriteRefusal | None = None

    def _refused(self, exc: BaseException) -> None:
        try:
            _raise_if_full(exc)
        except (StorageFull, StorageBusy) as refused:
            self._record(refused)
            raise

    def _record(self, refused: StorageFull | StorageBusy) -> None:
        code = "storage_full" if isinstance(refused, StorageFull) else "database_busy"
        self.last_write_refusal = WriteRefusal(code, str(refused), time.time())

    def _prepare(self, sql: str, params: Any) -> Any:
        statement = self.binding.prepare(sql)
        if not params:
            return statement
        # D1 rejects `undefined`, and Python None would become undefined: bind JS null instead.
        if jsnull is not None or all(p is not None for p in params):
            return statement.bind(*[jsnull if p is None else p for p in params])
        # Before Pyodide 0.28 no Python value converts to JS null: take the nulls from a parsed JSON
        # array, put the other values in, and pass that JS array to bind as its arguments.
        from js import JSON, Reflect

        args = JSON.parse(json.dumps([None] * len(params)))
        for i, p in enumerate(params):
            if p is not None:
                args[i] = p
        return Reflect.apply(statement.bind, statement, args)

    @staticmethod
    def _result(raw: Any) -> StatementResult:
        result = _py(raw) or {}
        rows = result.get("results") or []
        meta = result.get("meta") or {}
        if jsnull is None:
            return StatementResult([dict(r) for r in rows], int(meta.get("changes") or 0))
        # Pyodide >= 0.28 hands a NULL column back as jsnull, which is neither None nor == None:
        # the core's `is None` checks (e.g. a job without its RunPod id yet) must see None.
        return StatementResult([{k: None if v is jsnull else v for k, v in dict(r).items()} for r in rows],
                               int(meta.get("changes") or 0))

    async def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        try:
            return self._result(await self._prepare(sql, params).all()).rows
        except JsException as exc:
            _raise_if_full(exc)
            raise

    async def execute(self, sql: str, params: Any = ()) -> int:
        try:
            changes = self._result(await self._prepare(sql, params).run()).changes
        except JsException as exc:
            self._refused(exc)
            raise
        self.last_write_refusal = None
        return changes

    async def batch(self, statements: list[Statement]) -> list[StatementResult]:
        try:
            results = await self._batch(statements)
        except (StorageFull, StorageBusy) as refused:  # _batch names D1's refusal: every webhook's write is one
            self._record(refused)
            raise
        self.last_write_refusal = None
        return results

    async def _batch(self, statements: list[Statement]) -> list[StatementResult]:
        prepared = [self._prepare(s.sql, s.params) for s in statements]
        try:
            raw = _py(await self.binding.batch(to_js(prepared)))
        except JsException as exc:
            _raise_if_full(exc)
            raise
        return [self._result(r) for r in raw]

    async def read_many(self, statements: list[Statement]) -> list[list[dict[str, Any]]]:
        return [result.rows for result in await self._batch(statements)]  # one round trip, one snapshot


class R2ResultStore:
    """The ResultStore port over an R2 binding; an object's body is an R2Body, streamed into the Response."""

    def __init__(self, binding: Any) -> None:
        self.binding = binding

    @staticmethod
    def _meta(key: str, obj: Any) -> ObjectMeta:
        http = getattr(obj, "httpMetadata", None)
        ctype = None if _missing(http) else getattr(http, "contentType", None)
        etag = getattr(obj, "etag", None)  # R2's etag is unquoted (httpEtag is the same, quoted)
        return ObjectMeta(key, int(obj.size), None if _missing(ctype) else str(ctype),
                          None if _missing(etag) else str(etag), _epoch_s(getattr(obj, "uploaded", None)))

    async def head(self, key: str) -> ObjectMeta | None:
        try:
            obj = await self.binding.head(key)
        except JsException as exc:  # R2 rejects with a JS Error (e.g. 10001 internal error): retry later
            raise StoreUnavailable(f"R2 head {key} failed: {_js_message(exc)}") from None
        return None if _missing(obj) else self._meta(key, obj)

    async def get(self, key: str) -> StoredObject | None:
        """The object with its first chunk already read (an R2Body): R2 breaking off before any of the body is a
        503 the client retries, as the local store's is, not a 200 whose body never comes."""
        try:
            obj = await self.binding.get(key)
        except JsException as exc:
            raise StoreUnavailable(f"R2 get {key} failed: {_js_message(exc)}") from None
        if _missing(obj):
            return None
        meta = self._meta(key, obj)
        return StoredObject(meta, await R2Body.start(key, meta.size, obj.body))

    async def read_at_most(self, key: str, limit: int) -> bytes | None:
        found = await self.get(key)
        if found is None:
            return None
        data = await found.body.read_at_most(limit)
        if len(data) > limit:
            raise ObjectTooLarge(f"{key} has more than {limit} bytes")
        return data

    async def create(self, key: str, data: bytes, content_type: str, sha256: str) -> bool:
        """R2's conditional put: `etagDoesNotMatch: "*"` writes only where no object is, and answers null when one
        is. R2 checks the body it got against `sha256`."""
        options = to_js({"httpMetadata": {"contentType": content_type}, "onlyIf": {"etagDoesNotMatch": "*"},
                         "sha256": sha256}, dict_converter=_object_from_entries())
        try:
            written = await self.binding.put(key, _array_buffer(data), options)
        except JsException as exc:
            raise StoreUnavailable(f"R2 put {key} failed: {_js_message(exc)}") from None
        return not _missing(written)


class R2Body:
    """An R2 object's body (a ReadableStream) with its first chunk read. As a Response body (`stream`) the chunks
    are pulled on demand through a FixedLengthStream of the object's size, which keeps the Content-Length: a
    read R2 breaks off is told to `on_cut` (the Worker logs it, as the local server does) and cuts the response;
    a client that goes away cancels the R2 read."""

    def __init__(self, key: str, size: int, reader: Any, first: Any) -> None:
        self.key, self.size, self.reader, self.first = key, size, reader, first

    @classmethod
    async def start(cls, key: str, size: int, stream: Any) -> R2Body:
        body = cls(key, size, stream.getReader(), None)
        body.first = await body._next(0)
        return body

    async def _next(self, done: int) -> Any:
        try:
            return await self.reader.read()
        except JsException as exc:  # the stream errored (R2 dropped it): retry later
            raise StoreUnavailable(f"R2 get {self.key} broke off after {done} bytes: {_js_message(exc)}") from None

    async def read_at_most(self, limit: int) -> bytes:
        """The bytes up to just past `limit`: the rest is cancelled, never read."""
        chunks: list[bytes] = []
        size, result = 0, self.first
        while not result.done:
            chunks.append(_chunk_bytes(result.value))
            size += len(chunks[-1])
            if size > limit:
                await self.reader.cancel()
                break
            result = await self._next(size)
        return b"".join(chunks)

    async def cancel(self) -> None:
        """Let go of a body that will not be sent (a result whose size is not its job's): R2's read is cancelled."""
        try:
            await self.reader.cancel()
        except JsException:  # R2 had already broken it off
            pass

    def stream(self, on_cut: Callable[[StoreUnavailable], None]) -> Any:
        """The body for a Response: a pull source, not a Python loop writing into a stream, whose writes reject
        with `undefined` when the client goes away (a rejection Pyodide cannot turn into an exception: the
        promise is lost); the source is told of a cancel by a plain call instead. High-water mark 0: it reads R2
        only for a pending read, so it closes with nothing queued and is never called after it finished."""
        from js import Error, FixedLengthStream, Object, ReadableStream

        state = {"sent": 0, "over": False}
        proxies: list[Any] = []

        def finish() -> None:
            # The source's functions are freed once the stream is done with them; not while one is running.
            if not state["over"]:
                state["over"] = True
                asyncio.get_running_loop().call_soon(lambda: [proxy.destroy() for proxy in proxies])

        async def pull(controller: Any) -> None:
            result, self.first = self.first, None
            try:
                if result is None:
                    result = await self._next(state["sent"])
            except StoreUnavailable as exc:  # the status and Content-Length are out: only a cut tells the client
                if not state["over"]:
                    on_cut(exc)
                    controller.error(Error.new(str(exc)))
                finish()
                return
            if state["over"]:  # cancelled while R2 was read
                return
            if result.done:
                controller.close()
                finish()
                return
            controller.enqueue(result.value)
            state["sent"] += _chunk_size(result.value)

        async def cancel(reason: Any = None) -> None:  # the response was cancelled: its client went away
            finish()
            try:
                await self.reader.cancel()
            except JsException:  # R2 had already broken it off
                pass

        proxies.extend((create_proxy(pull), create_proxy(cancel)))
        source = to_js({"pull": proxies[0], "cancel": proxies[1]}, dict_converter=Object.fromEntries)
        strategy = to_js({"highWaterMark": 0}, dict_converter=Object.fromEntries)
        return ReadableStream.new(source, strategy).pipeThrough(FixedLengthStream.new(self.size))


def _epoch_s(uploaded: Any) -> int | None:
    """R2's `uploaded` (a JS Date; a datetime if a runtime converts it) in Unix seconds."""
    if hasattr(uploaded, "getTime"):
        return int(uploaded.getTime()) // 1000
    if hasattr(uploaded, "timestamp"):
        return int(uploaded.timestamp())
    return None


def _js_message(exc: BaseException) -> str:
    return (str(getattr(exc, "message", "") or exc) or type(exc).__name__)[:300]


class FetchTransport:
    """The HttpTransport port over the Workers `fetch` (with an abort-after timeout)."""

    def __init__(self, fetch: Any, abort_signal: Any = None) -> None:
        self.fetch = fetch
        self.abort_signal = abort_signal

    async def request(self, method: str, url: str, headers: Any, body: bytes | None, timeout_s: float) -> HttpReply:
        init: dict[str, Any] = {"method": method, "headers": dict(headers)}
        if body is not None:
            init["body"] = body.decode("utf-8")
        if self.abort_signal is not None:
            init["signal"] = self.abort_signal.timeout(int(timeout_s * 1000))
        try:
            reply = await self.fetch(url, to_js(init, dict_converter=_object_from_entries()))
            text = await reply.text()
        except JsException as exc:
            raise TransportError(f"fetch failed: {exc}") from None
        return HttpReply(int(reply.status), str(text).encode("utf-8"))


class BindingRateLimit:
    """The RateLimit port over a Workers Rate Limiting binding: `await limit({key})` answers `{success}`. The
    options must reach it as a plain JS object: a Python dict converts to a JS Map by default, which has no `key`
    property, so every request would count under one key, whatever its route or token."""

    def __init__(self, binding: Any) -> None:
        self.binding = binding

    async def limit(self, key: str) -> bool:
        outcome = await self.binding.limit(to_js({"key": key}, dict_converter=_object_from_entries()))
        # As the binding answered it: the core takes true or false and nothing else (ratelimit.counted), where
        # bool() read a `success: null` as over the limit, and refused every request.
        return outcome.success


def _object_from_entries() -> Any:
    try:
        from js import Object
        return Object.fromEntries
    except ImportError:
        return dict


def config_from_env(env: Any) -> ServiceConfig:
    """ServiceConfig from the Worker's bindings: each key upper-cased; numbers arrive as text."""
    raw: dict[str, Any] = {}
    for spec in fields(ServiceConfig):
        if spec.name in _LOCAL_ONLY or spec.name == "client_tokens":
            continue
        if spec.name in ("daily_spend_limit_usd", "client_daily_spend_limit_usd"):
            continue  # spend_limit_from_env: a bad one sets the limit aside, not the Worker
        value = getattr(env, spec.name.upper(), None)
        if _missing(value) or value == "":
            continue
        kind = str(spec.type)
        try:
            if "int" in kind and "float" not in kind:
                value = int(value)
            elif "float" in kind:
                value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"Worker binding {spec.name.upper()} must be a number, got {value!r}") from None
        raw[spec.name] = value
    for binding, (key, _) in SPEND_LIMIT_BINDINGS.items():
        limit, _ = spend_limit_from_env(env, binding)
        if limit is not None:
            raw[key] = limit
    return ServiceConfig.from_mapping(raw)


def spend_limit_from_env(env: Any, binding: str = SPEND_LIMIT_BINDING) -> tuple[float | None, str | None]:
    """The daily spend limit from the DAILY_SPEND_LIMIT_USD binding, or another of SPEND_LIMIT_BINDINGS (the clients'
    own, CLIENT_DAILY_SPEND_LIMIT_USD) (None: absent, no limit), and why a binding that
    holds no limit (hand-edited: empty, a typo, 0, over the maximum) was set aside. The Worker then serves with no
    limit and says so once an isolate (`service.spend_limit_ignored`): refusing every request as misconfigured would
    stop the creates and the webhooks of the jobs in flight too, whose outcomes would be lost while RunPod bills them."""
    value = getattr(env, binding, None)
    if _missing(value):
        return None, None
    text = str(value)
    try:
        limit = float(text)
    except ValueError:
        limit = math.nan
    if daily_spend_limit_ok(limit):
        return limit, None
    held = "empty" if not text.strip() else f"{text[:64]!r}"
    return None, (f"Worker binding {binding} is {held}, not a number of US dollars above 0 and at most "
                  f"{MAX_DAILY_SPEND_LIMIT_USD}")


def bundled_registry() -> Registry:
    import bundled_workflows  # generated by infra/worker_bundle.py

    return Registry.from_texts(bundled_workflows.WORKFLOWS)


def _binding(env: Any, name: str, kind: str) -> Any:
    value = getattr(env, name, None)
    if _missing(value):
        raise ConfigError(f"Worker binding {name} is missing; bind the service's {kind} as {name}")
    return value


def client_tokens_from_env(env: Any) -> tuple[dict[str, str], ClientTokensError | None]:
    """The named clients' hashes from the CLIENT_TOKENS bindings present (none when all are absent or empty: a stack
    of few clients has no CLIENT_TOKENS_2), and why a bad set was refused, naming the bindings at fault: then no client
    token is served, and the API token still is."""
    texts: dict[str, str] = {}
    for name in CLIENT_TOKENS_BINDINGS:
        value = getattr(env, name, None)
        if not _missing(value) and value != "":
            texts[name] = str(value)
    if not texts:
        return {}, None
    try:
        return hashes_from_bindings(texts), None
    except ClientTokensError as exc:
        return {}, exc


def build_app(env: Any, fetch: Any = None, abort_signal: Any = None, registry: Registry | None = None) -> App:
    config = config_from_env(env)
    clients, refused = client_tokens_from_env(env)
    if clients:
        config = dataclasses.replace(config, client_tokens=clients)
    db, results = _binding(env, DB_BINDING, "D1 database"), _binding(env, RESULTS_BINDING, "R2 bucket")
    registry = registry or bundled_registry()
    if fetch is None:
        from js import AbortSignal
        from js import fetch as js_fetch
        fetch, abort_signal = js_fetch, AbortSignal
    gateway = HttpRunPodGateway(FetchTransport(fetch, abort_signal), config.runpod_endpoint_base,
                                config.runpod_api_key, config.runpod_timeout_s)
    limits, unbound = _rate_limits(env, config)
    ignored = {binding: spend_limit_from_env(env, binding)[1] for binding in SPEND_LIMIT_BINDINGS}
    app = create_app(config, D1Database(db), R2ResultStore(results), gateway, registry=registry, log_sink=stdout_sink,
                     rate_limits=limits)
    if refused is not None:  # once per isolate, as below; never a hash
        app.log.error("service.client_tokens_refused", reason="misconfigured",
                      data={"binding": ", ".join(refused.bindings) or CLIENT_TOKENS_BINDING},
                      message=f"{refused}: every client token is answered 401 until it is fixed (the API token is "
                              "served); check goldgate:clientTokens and `pulumi up` the stack")
    for binding, why in ignored.items():
        if why is not None:  # once per isolate, as below; the binding says which limit is set aside
            field = SPEND_LIMIT_BINDINGS[binding][1]
            whose = "no daily spend limit" if binding == SPEND_LIMIT_BINDING else "no client's own daily spend limit"
            app.log.warning("service.spend_limit_ignored", reason="misconfigured",
                            data={"binding": binding, "value": str(getattr(env, binding))[:64]},
                            message=f"{why}: creates are served with {whose} ({field}); set the stack's and "
                                    "`pulumi up` it, or delete the binding for none")
    if unbound:  # once per isolate: build_app runs on its first request
        app.log.warning("service.rate_limit_unbound", reason="binding_missing", data={"bindings": unbound},
                        message=f"Worker binding(s) {', '.join(unbound)} missing or not of type ratelimit (a deploy "
                                "from before the API's rate limits, or another binding under that name): those routes "
                                "are served without a rate limit; `pulumi up` the stack to declare them")
    return app


def _rate_limits(env: Any, config: ServiceConfig) -> tuple[dict[str, BindingRateLimit], list[str]]:
    """Each route's counter over its binding, for the routes the config gives a limit; and the bindings missing, or
    with no `limit()` to call (another type of binding under the name): said once, not on every request's line."""
    limits: dict[str, BindingRateLimit] = {}
    unbound: list[str] = []
    for route, name in RATE_LIMIT_BINDINGS.items():
        if getattr(config, ratelimit.CONFIG_KEYS[route]) is None:
            continue
        binding = getattr(env, name, None)
        if _missing(binding) or not callable(getattr(binding, "limit", None)):
            unbound.append(name)
        else:
            limits[route] = BindingRateLimit(binding)
    return limits, unbound


async def to_core_request(request: Any, body_limit: Callable[[str, str, str | None, str], int],
                          rate_counted: bool = False) -> Request:
    """`body_limit`: the App's ((path, query string, Authorization field, method) -> most body bytes a request to it
    may carry). A body declared over it is not read: the core refuses it with 413 by its Content-Length.
    `rate_counted`: App.count_upload has counted the request (Request.rate_counted)."""
    url = urlsplit(str(request.url))
    method, headers = _method(request), _headers(request)
    max_body_bytes = body_limit(url.path or "/", url.query, headers.get("authorization"), method)
    body: bytes | bytearray = b""
    declared = headers.get("content-length")
    if method not in ("GET", "HEAD") and not declares_over(declared, max_body_bytes):
        body = await _read_body(request, max_body_bytes, _length(declared))
    # a body read is its buffer, not a copy
    return Request(method, url.path or "/", url.query, headers, body, rate_counted=rate_counted)


# Upload bytes one isolate reads at once, as multiples of max_input_bytes (the isolate's requests share its
# 128 MB). An upload costs about twice its bytes at its peak: the body in Python, read into one buffer, and its
# copy in JS memory that R2's put is handed (bench/input_upload.py: 1 upload of 20 MiB, 31% of 128 MB; 2 at once,
# 63%; 3, 94%; 4, 125%). Two leave the interpreter and the isolate's other requests the rest.
UPLOADS_AT_ONCE = 2
# An upload of 20 MiB takes seconds to arrive: by then one of those being read has finished.
UPLOADS_BUSY_RETRY_AFTER_S = 5


class UploadBudget:
    """The upload bytes this isolate reads and holds at once: taken before a body is read, given back when its
    request ends (however it ends). One per isolate (a module global), shared by its concurrent requests."""

    def __init__(self) -> None:
        self.held = 0

    def take(self, size: int, capacity: int) -> Callable[[], None] | None:
        """A release of `size` bytes taken, or None (nothing taken) when they would hold more than `capacity`."""
        if size and self.held + size > capacity:
            return None
        self.held += size
        taken = [size]

        def release() -> None:  # once: a second call gives back nothing
            self.held -= taken.pop() if taken else 0

        return release


UPLOADS = UploadBudget()


def _upload_bytes(app: App, request: Any) -> int:
    """What a request takes of the upload budget before its body is read: an upload the bearer token allows (the
    one request read up to max_input_bytes), its Content-Length, or max_input_bytes when it has none. Any other
    request takes nothing: its body is read no further than max_body_bytes (64 KiB), or a signed webhook's."""
    if _missing(request.body):
        return 0
    headers = _headers(request)
    if not app.is_upload(_method(request), urlsplit(str(request.url)).path or "/", headers.get("authorization")):
        return 0
    limit, declared = app.config.max_input_bytes, headers.get("content-length")
    if declares_over(declared, limit):
        return 0  # refused with 413, never read
    length = _length(declared)
    return limit if length is None else length


def _uploads_busy(app: App, request: Any, size: int, capacity: int) -> Response:
    """The 503 for an upload the budget has no room for: its body is not read, nothing is stored. Its own code, not
    `store_unavailable`: R2 is fine, and a client (or an alert) that reads the code must not blame it."""
    refused = ApiError(503, "uploads_busy", f"this Worker instance is reading as many uploads as it holds at once "
                                            f"({capacity} bytes, {UPLOADS_AT_ONCE} x max_input_bytes, within its "
                                            "128 MB of memory); nothing was read or stored: send it again after "
                                            "Retry-After", retry_after=str(UPLOADS_BUSY_RETRY_AFTER_S))
    app.log.warning("input.refused", reason="uploads_busy", message=refused.message,
                    trace_id=traceparent_trace_id(_headers(request).get("traceparent")),
                    data={"declared_bytes": size, "held_bytes": UPLOADS.held, "budget_bytes": capacity},
                    http={"method": _method(request)[:16], "path": (urlsplit(str(request.url)).path or "/")[:512],
                          "status": 503})
    return refused.to_response()


def _method(request: Any) -> str:
    """The method as the client sent it. The SDK's `workers.Request.method` is `HTTPMethod[name]`, a KeyError for
    any method that enum lacks (WebDAV's PROPFIND, PURGE; a lower-case `patch`, which fetch does not upper-case),
    which escaped `Default.fetch` as the runtime's error page instead of the core's JSON 405: read the JS Request's
    own `method`, a plain string."""
    js_request = getattr(request, "js_object", None)
    return str((request if _missing(js_request) else js_request).method)


def _headers(request: Any) -> dict[str, str]:
    """Lower-cased names to values. The SDK's `workers.Request.headers` (an HTTPMessage) splits each value
    at its commas before compatibility date 2026-02-17: read the JS Request's own Headers instead, which
    keep values whole (repeated headers joined with ", "). Pieces of a split value are joined back."""
    js_request = getattr(request, "js_object", None)
    source = request.headers if _missing(js_request) else js_request.headers
    pairs = source.items() if hasattr(source, "items") else source.entries()
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = str(name).lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else str(value)
    return headers


class BodyLengthMismatch(Exception):
    """A body that ran past its Content-Length or ended short of it (answered 400 `body_unreadable`)."""


def _length(content_length: str | None) -> int | None:
    """A Content-Length field's number (one declares_over let through), or None when there is none."""
    return int(content_length) if content_length is not None and content_length.isascii() \
        and content_length.isdigit() else None


async def _read_body(request: Any, max_body_bytes: int, declared: int | None = None) -> bytes | bytearray:
    """The body, read chunk by chunk from its ReadableStream (the SDK's Request and the JS one both have `body`),
    into one buffer of its Content-Length (`declared`, at most the limit): the isolate holds the body once, not
    its chunks and their join too. A chunked upload has no Content-Length to refuse up front: stop just past the
    limit (the core answers 413) instead of holding, say, 100 MB in an isolate limited to 128 MB."""
    stream = request.body
    if _missing(stream):
        return b""
    if declared is None:
        return await _read_stream(stream, max_body_bytes)  # over the limit: the core answers 413
    return await _read_exactly(stream, declared)


async def _read_exactly(stream: Any, declared: int) -> bytearray:
    """A ReadableStream's `declared` bytes, each chunk copied into one buffer of that size. More is cancelled
    unread and, like fewer, raises BodyLengthMismatch."""
    reader = stream.getReader()
    body = bytearray(declared)
    size = 0
    with memoryview(body) as view:
        while not (result := await reader.read()).done:
            chunk = _chunk_bytes(result.value)
            if size + len(chunk) > declared:
                await reader.cancel()
                raise BodyLengthMismatch(f"the request body ran past the {declared} bytes its Content-Length "
                                         "declares; send it again with its own length")
            view[size:size + len(chunk)] = chunk
            size += len(chunk)
    if size < declared:
        raise BodyLengthMismatch(f"the request body ended after {size} of the {declared} bytes its Content-Length "
                                 "declares; send it again")
    return body


async def _read_stream(stream: Any, limit: int) -> bytearray:
    """A ReadableStream's bytes, read chunk by chunk into one growing buffer up to just past `limit`: the rest is
    cancelled, never read."""
    reader = stream.getReader()
    body = bytearray()
    while not (result := await reader.read()).done:
        body += _chunk_bytes(result.value)
        if len(body) > limit:
            await reader.cancel()
            break
    return body


def _chunk_size(value: Any) -> int:
    return int(value.byteLength) if hasattr(value, "byteLength") else len(_chunk_bytes(value))


def _chunk_bytes(value: Any) -> bytes:
    if hasattr(value, "to_bytes"):  # a Uint8Array
        return bytes(value.to_bytes())
    value = _py(value)
    return value.tobytes() if isinstance(value, memoryview) else bytes(value)


def to_workers_response(response: Response, on_cut: Callable[[StoreUnavailable], None] | None = None) -> Any:
    """`on_cut`: told when R2 breaks off a result body already answered 200 (the client gets a cut response).
    The SDK's `workers.Response` takes a str or a JS body; Python bytes (and a JS Uint8Array) are a TypeError
    in its releases before it learnt them: any other body of bytes goes over as a JS ArrayBuffer, which
    every release takes."""
    body = response.body  # bytes, or an R2Body streamed from R2
    if isinstance(body, R2Body):
        body = body.stream(on_cut or (lambda exc: None))
    elif isinstance(body, (bytes, bytearray, memoryview)):
        if not body:
            body = None  # no body (a HEAD answer): the runtime then keeps the Content-Length we set
        elif response.headers.get("content-type") == "application/json":
            body = bytes(body).decode("utf-8")
        else:
            body = _array_buffer(bytes(body))
    return WorkersResponse(body, status=response.status, headers=dict(response.headers))


def _array_buffer(data: bytes) -> Any:
    """`data` copied into a JS ArrayBuffer of exactly its length (plain CPython without `js`: `data` itself)."""
    try:
        from js import Uint8Array
    except ImportError:  # pragma: no cover - the CPython tests' stand-in `js` has no typed arrays
        return data
    array = Uint8Array.new(len(data))
    array.assign(data)
    return array.buffer


def _cut_logger(app: App, request: Request, response: Response) -> Callable[[StoreUnavailable], None]:
    """The line for a result download R2 cut after its 200 went out: the local server's (service/asgi.py)."""

    def cut(exc: StoreUnavailable) -> None:
        (response.log or app.log).error("result.refused", reason="store_unavailable",
                                        message=f"{exc}; the client got a cut download and should retry it",
                                        http={"method": request.method[:16], "path": request.path[:512],
                                              "status": response.status})
    return cut


# D1 statements one scheduled run may make: half of D1's 1,000 queries per Worker invocation (Workers Paid) and,
# each being a few milliseconds of Python, far inside the CPU limit. Every retention statement stands alone, so a
# run cut here leaves a consistent database and the next one carries on from where it stopped (about 8,000 jobs,
# six statements a window of 100, or 500,000 keys, or 2,500,000 metrics rows a run).
RETENTION_STATEMENTS = 500


class StatementsSpent(Exception):
    """A scheduled prune made its RETENTION_STATEMENTS statements; the next run continues."""


class BoundedSql:
    """retention.Sql over the D1 port that refuses statements past `statements`."""

    def __init__(self, db: D1Database, statements: int) -> None:
        self.db, self.left = db, statements

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if self.left <= 0:
            raise StatementsSpent
        self.left -= 1
        return await self.db.query(sql, params)


async def prune_on_schedule(env: Any, now_s: float, cron: str) -> None:
    """One Cron Trigger run: the stack's retention (its RETENTION_* bindings) over D1, logged as one line.
    A failure is logged and raised again, so the Cron Events of the Worker show the run failed too."""
    try:
        config = config_from_env(env)
        db = D1Database(_binding(env, DB_BINDING, "D1 database"))
    except ConfigError as exc:
        Logger(stdout_sink).error("service.misconfigured", reason="misconfigured", message=str(exc),
                                  error={"type": type(exc).__name__, "message": str(exc)})
        raise
    log = Logger(stdout_sink, secrets=(config.api_token, config.webhook_secret, config.webhook_secret_previous or "",
                                       config.runpod_api_key, config.api_token_previous or ""),
                 stack=config.stack, worker_image_tag=config.worker_image_tag,
                 workflow_version=config.workflow_version)
    keep_days, metrics_keep_days = config.retention_keep_days, config.retention_metrics_keep_days
    if keep_days is None:
        log.info("retention.skipped", reason="not_configured", data={"cron": cron},
                 message="nothing pruned: this Worker has no RETENTION_KEEP_DAYS binding; set the stack's "
                         "database.retention and `pulumi up`, or run `goldgate prune`")
        return
    cutoffs = retention.Cutoffs.at(now_s, keep_days, metrics_keep_days)
    sql, deleted = BoundedSql(db, RETENTION_STATEMENTS), dict.fromkeys(retention.TABLES, 0)
    settings = {"cron": cron, "keep_days": keep_days, "metrics_keep_days": metrics_keep_days,
                "jobs_before": cutoffs.jobs, "metrics_before": cutoffs.metrics}
    try:
        pruned: retention.Pruned | None = await retention.prune(sql, cutoffs, deleted=deleted, resume=True)
    except StatementsSpent:
        pruned = None
    except Exception as exc:
        log.error("retention.failed", reason="prune_failed", error=error_field(exc),
                  data={**settings, "deleted": deleted},
                  message="the scheduled prune failed; what it deleted stays deleted, and the next run carries on")
        raise
    if pruned is None:
        log.info("retention.pruned", status="partial", data={**settings, "deleted": deleted},
                 message=f"stopped after {RETENTION_STATEMENTS} statements; the next run carries on")
        return
    stuck = pruned.unfinished_kept
    log.info("retention.pruned", status="complete",
             data={**settings, "deleted": pruned.deleted, "remaining": pruned.remaining, "unfinished_kept": stuck},
             message=f"{stuck} queued or in-progress jobs older than the cutoff were kept: they are stuck; "
                     "recover each with `POST /api/admin/recover/JOB` (docs/RUNBOOK.md, A stuck job)" if stuck else None)


class Default(WorkerEntrypoint):  # type: ignore[misc, valid-type]
    """One App per isolate, built on the first request from this Worker's bindings."""

    _app: App | None = None

    async def fetch(self, request: Any) -> Any:
        try:
            if Default._app is None:
                Default._app = build_app(self.env)
            app = Default._app
        except (ConfigError, WorkflowError) as exc:  # a deploy fault: say which, in the answer and the log
            Logger(stdout_sink).error("service.misconfigured", reason="misconfigured", message=str(exc),
                                      error={"type": type(exc).__name__, "message": str(exc)})
            return to_workers_response(json_response(500, {"error": {"code": "misconfigured", "message": str(exc)}}))
        # An upload over its rate limit is answered before its body is read or takes any of the uploads' budget.
        headers = _headers(request)
        counted = await app.count_upload(_method(request), urlsplit(str(request.url)).path or "/",
                                         headers.get("authorization"), headers.get("traceparent"))
        if isinstance(counted, Response):
            return to_workers_response(counted)
        size, capacity = _upload_bytes(app, request), UPLOADS_AT_ONCE * app.config.max_input_bytes
        release = UPLOADS.take(size, capacity)
        if release is None:
            return to_workers_response(_uploads_busy(app, request, size, capacity))
        work: asyncio.Future[Response] | None = None
        try:
            try:
                core_request = await to_core_request(request, app.body_limit, rate_counted=counted)
            except Exception as exc:  # noqa: BLE001 - the client broke off mid-upload: answer and log on the schema
                app.log.warning("http.body_unreadable", reason="body_unreadable", error=error_field(exc),
                                trace_id=traceparent_trace_id(headers.get("traceparent")),
                                http={"method": _method(request)[:16],
                                      "path": (urlsplit(str(request.url)).path or "/")[:512], "status": 400})
                return to_workers_response(json_response(400, {"error": {
                    "code": "body_unreadable", "message": str(exc) if isinstance(exc, BodyLengthMismatch) else
                    "the request body could not be read to its end; send it again"}}))
            if core_request.method == "POST":
                # The work may outlive this call (a client gone away): it gives the budget back when it ends.
                work = asyncio.ensure_future(app.handle(core_request))
                work.add_done_callback(lambda _: release())
                return to_workers_response(await self._to_the_end(work))
            response = await app.handle(core_request)
            return to_workers_response(response, _cut_logger(app, core_request, response))
        finally:
            if work is None:
                release()

    async def scheduled(self, controller: Any, env: Any = None, ctx: Any = None) -> None:
        """The Cron Trigger's entry. The runtime passes (controller, env, ctx); the bindings are `self.env`
        here as in `fetch`."""
        await prune_on_schedule(self.env, float(controller.scheduledTime) / 1000, str(controller.cron))

    async def _to_the_end(self, work: Awaitable[Response]) -> Response:
        """`work`'s answer, with `work` under ctx.waitUntil: the runtime cancels a request's work when its
        client disconnects unless it runs there. A POST changes state; cut between RunPod's /run answer and
        recording its id, a create would leave a job RunPod runs and bills that no recovery can find."""
        from js import Promise

        task = asyncio.ensure_future(work)

        def settle(resolve: Any, reject: Any) -> None:
            # A JS promise settled by the task, resolved with nothing: a Python value handed to JS
            # would be a borrowed proxy, destroyed before the runtime looks at it.
            task.add_done_callback(lambda _: resolve())

        self.ctx.waitUntil(Promise.new(create_once_callable(settle)))
        return await asyncio.shield(task)  # a cancelled wait for the answer leaves the work running
