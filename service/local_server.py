"""The local server: the service core under uvicorn, over SQLite (WAL, D1 rules) and an S3-protocol
result store, calling RunPod (or its emulator) over httpx.

How to start it, its config keys, what it writes once listening, its exit status and the in-process API
(`start_in_thread`, `build_local`): docs/WEBHOOK_SEMANTICS.md, "The local server".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sqlite3
import stat
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.app import App, create_app
from service.asgi import AsgiService
from service.config import ConfigError, ServiceConfig
from service.http import ApiError
from service.logs import Logger, Sink, stdout_sink
from service.migrate import MigrationError, apply_sqlite
from service.ports import StoreUnavailable
from service.runpod import HttpRunPodGateway
from service.sockets import StartupError, inherited_socket, listening_socket
from service.sqlite_database import SqliteDatabase
from service.workflows import Registry, WorkflowError


@dataclass
class LocalService:
    app: App
    asgi: AsgiService
    db: SqliteDatabase
    log: Logger


def load_config(path: str | Path) -> ServiceConfig:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"service config file {path} does not exist") from None
    except OSError as exc:  # a directory, or no permission to read it
        raise ConfigError(f"service config file {path} cannot be read: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"service config file {path} is not valid JSON: {exc}") from None
    return ServiceConfig.from_mapping(raw)


def build_local(config: ServiceConfig, log_sink: Sink = stdout_sink) -> LocalService:
    """The service wired to SQLite, the S3 store and RunPod over httpx (not yet serving)."""
    missing = [k for k in ("db_path", "s3_endpoint_url", "s3_bucket", "s3_access_key_id", "s3_secret_access_key",
                           "workflows_dir") if not getattr(config, k)]
    if missing:
        raise ConfigError(f"the local server needs service config key(s): {', '.join(missing)}")
    if not config.apply_migrations_from and not os.path.isfile(config.db_path):  # type: ignore[arg-type]
        raise ConfigError(_UNMIGRATED.format(path=config.db_path, what="there is no database file"))
    db = _open_db(config.db_path)  # type: ignore[arg-type]
    if config.apply_migrations_from:
        conn = sqlite3.connect(config.db_path, isolation_level=None)  # type: ignore[arg-type]
        try:
            apply_sqlite(conn, Path(config.apply_migrations_from))
        finally:
            conn.close()
    elif not _migrated(db):
        db.close()
        raise ConfigError(_UNMIGRATED.format(path=config.db_path, what="the database has no migrations applied"))
    registry = Registry.from_dir(config.workflows_dir)  # type: ignore[arg-type]
    # Imported only once the config, the db and the workflows are taken: botocore and httpx cost about 0.5 s
    # of CPU to import, which a start refused for its config (exit 2) need not spend before saying why.
    from service.httpx_transport import HttpxTransport
    from service.s3_store import S3ResultStore

    store = S3ResultStore.connect(config.s3_endpoint_url, config.s3_bucket,  # type: ignore[arg-type]
                                  config.s3_access_key_id, config.s3_secret_access_key)  # type: ignore[arg-type]
    transport = HttpxTransport()
    runpod = HttpRunPodGateway(transport, config.runpod_endpoint_base, config.runpod_api_key, config.runpod_timeout_s)
    app = create_app(config, db, store, runpod, registry=registry, log_sink=log_sink)
    return LocalService(app, AsgiService(app, on_shutdown=transport.aclose), db, app.log)


# The host migrates the database before it starts the service (apply_migrations_from is for tests and tools): a
# missing file, or one without goldgate's tables, is a database deleted or replaced under the stack. Served, every
# create answered 500 `no such table`, and a new empty file took the place of the deleted one's jobs.
_UNMIGRATED = ("service config db_path {path}: {what}, and the service serves only a migrated database (the host "
               "migrates it before starting the service): refusing to serve on it; if it was deleted, see "
               "docs/D1_DISASTER_RECOVERY.md, \"The database file was deleted\"")


def _migrated(db: SqliteDatabase) -> bool:
    try:
        return bool(db.conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'd1_migrations'")
                    .fetchall())
    except sqlite3.Error:
        return False


def _open_db(path: str) -> SqliteDatabase:
    try:
        return SqliteDatabase(path)
    except sqlite3.Error as exc:  # a missing directory, no permission, or a file that is not SQLite
        raise ConfigError(f"service config db_path {path} cannot be opened as a SQLite database ({exc}); "
                          "point it at a file in an existing, writable directory") from None


class _JsonRecords(logging.Handler):
    """uvicorn's own warnings and errors, as schema lines instead of plain text."""

    def __init__(self, log: Logger) -> None:
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and isinstance(record.exc_info[1], StoreUnavailable):
            return  # a download the store cut: the adapter logged it (result.refused), naming its job
        if record.msg == _UVICORN_REFUSAL:
            return  # EdgeProtocol answers and logs it, saying what was wrong
        level = "error" if record.levelno >= logging.ERROR else "warning"
        self.log.log(level, "service.server_log", message=record.getMessage()[:2000], data={"logger": record.name})


# The server settings, shared with bench/webhook_throughput.py's baseline so both measure one stack.
# loop/http "auto": uvloop and httptools when installed (uvicorn's standard extras, which runpod's fastapi[all]
# brings), else asyncio/h11; the service itself serves over EdgeProtocol, httptools' protocol with the edge's rules.
# ws "none": the API has no WebSocket route, and a Worker answers an Upgrade request as any other request.
# date_header off: uvicorn refreshes its Date from a main loop that wakes 10 times a second; the service sends one
# all the same, from EdgeProtocol (_date_field).
UVICORN_SETTINGS: dict[str, Any] = {"log_config": None, "access_log": False, "lifespan": "on", "timeout_keep_alive": 30,
                                    "log_level": "warning", "server_header": False, "date_header": False,
                                    "loop": "auto", "http": "auto", "ws": "none"}

# Cloudflare's request limits (Workers platform limits): URLs 16 KB, request headers 128 KB in total. The local
# server counts the request target and every field line as sent (with its ": " and CRLF) against the 128 KB, so
# it is the stricter of the two: a request it takes, the Worker's edge takes too.
URL_LIMIT_BYTES = 16 * 1024
HEAD_LIMIT_BYTES = 128 * 1024
# A client must send its whole header block within this many seconds: of the connection opening for its first
# request, of the first byte for a later one on a kept-alive connection (a new connection that begins no request
# in that time is closed); the body must follow within BODY_TIMEOUT_S of the header block (11 MB, the
# largest webhook, at 40 KB/s). Otherwise a few clients trickling bytes would each hold a connection forever.
HEAD_TIMEOUT_S = 30.0
BODY_TIMEOUT_S = 300.0
# And at a minimum rate (Apache mod_reqtimeout's default `body=20,MinRate=500`): once the header block is in, a body
# that did not come with it has BODY_GRACE_S seconds, plus one more for each BODY_MIN_RATE_BPS bytes received. Under
# the 300 s deadline alone, a client trickling a byte now and then held a connection, a request task and its buffer
# for 5 minutes each, and enough of them use up the file descriptors RunPod's webhooks need. A body
# slower than 500 bytes a second for longer than that grace is no client anyone waits for: the largest create body
# (64 KB by default) takes 2 minutes at that rate. Time in which the server itself is not reading (uvicorn pauses a
# connection while a pipelined request waits, or its app has not taken the buffered body), or a pipelined request
# waits for the answer to the one before it, is not counted against the client: the rate is measured afresh after
# it, and the body deadline starts again (answers go out in request order, and a refusal written ahead of the answer
# owed would be read as that answer).
BODY_GRACE_S = 20.0
BODY_MIN_RATE_BPS = 500
# The other way: a client that takes none of an answer for this long (its receive window stays shut, so the write
# buffer stays over its high-water mark) is disconnected, as nginx's send_timeout (60 s) does. A result download
# streams from the store only as fast as the client reads: a client that stopped reading held its connection, its
# request task and the store's stream open for ever.
WRITE_STALL_S = 60.0
# A request on its way when the server is told to stop (a deploy replaces the local service): on a connection it
# accepted just then (RunPod's webhook sender connects anew for each delivery), or a kept-alive client's next one.
# uvicorn closed such a connection at once, and the request was dropped unanswered; it now has this long to come,
# and is answered with `Connection: close`. A connection that sends nothing in that time is closed.
STOP_GRACE_S = 1.0
# An answer given before the request was read to its end (a 413 or an anonymous upload's 401 at the body limit, a
# refusal of its header block) closes the connection while the client may still be sending. A socket closed with
# bytes unread, or with more coming, is reset by the kernel (RFC 1122 4.2.2.13): a client still writing its body
# (Node's fetch, a browser) met the reset and never read the answer (`fetch failed`, ECONNRESET, 6 tries in 10). As
# nginx (lingering_close) and Go's net/http do, the server now half-closes once the answer is out (its FIN follows
# the answer) and reads and drops what still comes until the client closes its side too: for at most
# LINGER_TIMEOUT_S without a byte, LINGER_TIME_S in all (nginx's lingering_timeout and lingering_time) and
# LINGER_BYTES, more than the largest body any route reads (an input image, 20 MiB); then it is cut off. A client
# refused for being slow (408) is not waited for, and a stop cuts a lingering connection at once.
LINGER_TIMEOUT_S = 5.0
LINGER_TIME_S = 30.0
LINGER_BYTES = 32 * 1024 * 1024
_UVICORN_REFUSAL = "Invalid HTTP request received."  # uvicorn's warning before it calls send_400_response
_FIELD_LINE_OVERHEAD = len(": \r\n")

# Every answer's Date (RFC 9110 6.6.1: a server with a clock sends one; a client judges its own clock's skew by it
# before comparing url_expires_at or settle_by with it, and a Worker's edge sends one too). uvicorn's own comes from
# its main loop, which QuietServer does not run: the edge keeps the field instead, formatted at most once per second
# of the clock (by the first request in it), never per request. `_now` is the clock (tests set it).
_now = time.time
_date: tuple[int, tuple[bytes, bytes]] = (-1, (b"date", b""))


def _date_field() -> tuple[bytes, bytes]:
    """The Date field of this second, as one (name, value) pair shared by every answer in it."""
    global _date
    second = int(_now())
    dated = _date
    if dated[0] != second:
        dated = _date = (second, (b"date", formatdate(second, usegmt=True).encode("ascii")))
    return dated[1]


# The longest write _OneWritePerTurn holds back: an answer's head (its status line and fields) is a few hundred bytes.
_HELD_WRITE_BYTES = 4096


class _OneWritePerTurn:
    """A connection's transport as EdgeProtocol and its requests' cycles write to it. uvicorn writes an answer in two
    writes, its head (status line and fields) and then its body: two send(2) calls and two TCP segments, each waking
    the client, on every request. A short write is held here until the next write, or until the event loop comes
    round again (a stream's head, a HEAD answer's, 100 Continue), whichever is first: a whole answer leaves in one.
    Bytes go out in the order written; close() sends what is held first, abort() drops it with the rest unsent.
    Once closed it is closing to its writers, and takes no more bytes, also while `lingers` (asked at close())
    keeps the socket reading what the client still sends."""

    __slots__ = ("_closed", "_held", "_lingers", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop,
                 lingers: Callable[[], bool]) -> None:
        self._transport = transport
        self._loop = loop
        self._lingers = lingers
        self._held: bytes | None = None
        self._closed = False

    def write(self, data: bytes) -> None:
        if self._closed:
            return  # (uvicorn writes nothing after it closes; a lingering socket has sent its FIN)
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))   # one send, without copying a large body onto the head
        elif len(data) <= _HELD_WRITE_BYTES and not self._transport.is_closing():
            self._held = bytes(data)
            self._loop.call_soon(self._send_held)
        else:
            self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        self.write(b"".join(lines))

    def _send_held(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def is_closing(self) -> bool:
        return self._closed or self._transport.is_closing()

    def close(self) -> None:
        if self._closed:
            return
        self._send_held()
        self._closed = True
        if self._transport.is_closing() or not self._lingers():
            self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._closed = True
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # the rest (get_extra_info, pause_reading, ...) as the transport's own
        return getattr(self._transport, name)


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (what http="auto" selects here), answering what it refuses before the app sees
    it in the API's JSON error shape with a log line saying why instead of plain text, refusing
    a request line or header block over Cloudflare's limits (414, 431), and closing a connection whose header
    block (HEAD_TIMEOUT_S) or body (BODY_TIMEOUT_S, and BODY_MIN_RATE_BPS after BODY_GRACE_S) does not arrive in
    time (408, or silently when nothing of a request came), or whose client takes none of an answer for
    WRITE_STALL_S; and, answering before a request's body is all read, draining what the client still sends
    before it closes (LINGER_TIMEOUT_S)."""

    log: Logger  # set by edge_protocol()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._body_rate_check: asyncio.TimerHandle | None = None
        self._body_rate_from = 0.0  # loop time the body's rate is measured from
        self._body_received = 0  # bytes received since then
        self._write_stall: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # the request target and field lines parsed so far
        self._head_unparsed = 0  # bytes received while the header block is incomplete
        self._head_started = False
        self._refusal: ApiError | None = None
        self._deferred: ApiError | None = None  # a refusal waiting for the answers owed before it
        self._stopping = False  # the server was told to stop: the connection takes at most one more request
        self._stop_grace: asyncio.TimerHandle | None = None
        self._socket: asyncio.Transport = None  # type: ignore[assignment]  # the transport under _OneWritePerTurn
        self._message_open = False  # a request begun whose body (or header block) is not all read yet
        self._eof = False  # the client closed its sending side
        self._refused_slow = False  # a 408: a client too slow to wait for is not lingered for
        self._linger_ends: float | None = None  # lingering (see LINGER_TIMEOUT_S) until this loop time at the latest
        self._linger_last = 0.0  # loop time of the last bytes received while lingering
        self._linger_bytes = 0
        self._linger_check: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._socket = transport
        super().connection_made(_OneWritePerTurn(transport, self.loop, self._linger))  # type: ignore[arg-type]
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger_check is not None:
            self._linger_check.cancel()
            self._linger_check = None
        if self._stop_grace is not None:
            self._stop_grace.cancel()
            self._stop_grace = None
        self._disarm_head_deadline()
        self._disarm_body_deadline()
        if self._write_stall is not None:
            self._write_stall.cancel()
            self._write_stall = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """Called as the server stops. uvicorn closes a connection with no request in hand at once, dropping one
        whose bytes are on their way: it gets STOP_GRACE_S to come (a request begun has its head deadline), and is
        answered with `Connection: close`. One in hand is answered so, as uvicorn does. One lingering after its
        answer is cut at once: nothing is owed to it, and uvicorn waits for every connection to end."""
        self._stopping = True
        if self._linger_ends is not None:
            self._socket.abort()
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
        elif not self._head_started and self._stop_grace is None and not self.transport.is_closing():
            self._stop_grace = self.loop.call_later(STOP_GRACE_S, self._close_unused)

    def _close_unused(self) -> None:
        self._stop_grace = None
        if not self._head_started and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_stall is None:
            self._write_stall = self.loop.call_later(WRITE_STALL_S, self._write_stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_stall is not None:
            self._write_stall.cancel()
            self._write_stall = None

    def _write_stalled(self) -> None:
        self._write_stall = None
        if self.transport.is_closing():
            return
        # abort, not close: close() would wait for the buffer to reach a client that reads nothing. The request's
        # task sees the disconnect and closes the store's stream.
        self.transport.abort()
        client = f"{self.client[0]}:{self.client[1]}" if self.client else None
        self.log.warning("service.server_log", reason="client_stalled",
                         message=f"the client took none of the answer for {WRITE_STALL_S:g} seconds; its connection "
                                 "was closed and the answer cut", data={"logger": "edge_protocol", "client": client})

    def data_received(self, data: bytes) -> None:
        if self._linger_ends is not None:  # answered and half-closed: what still comes is read and dropped
            self._linger_bytes += len(data)
            self._linger_last = self.loop.time()
            if self._linger_bytes > LINGER_BYTES:
                self._socket.abort()
            return
        if self._deferred is not None:  # what follows a refused request is never read as a request
            return
        if self._body_rate_check is not None:
            self._body_received += len(data)
        if self._head_deadline is None and (self.cycle is None or self.cycle.response_complete):
            # Between requests: uvicorn stops its keep-alive timeout at any byte, also at the blank lines
            # allowed before a request, which begin no request (on_message_begin) and would arm nothing.
            self._arm_head_deadline()
        if not self._head_started and self.cycle is None and data[:1] in (b"\x16", b"P"):
            refusal = _foreign_protocol(data)
            if refusal is not None:
                self._answer_refusal(refusal)
                return
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._head_deadline is not None:
            # A field line still being read is buffered by the parser, out of the callbacks' sight.
            self._head_unparsed += len(data)
            if self._head_unparsed > HEAD_LIMIT_BYTES:
                self._answer_refusal(_head_too_large())
        elif self._body_deadline is None and self.cycle is not None and self.cycle.more_body:
            # A body that did not come with its header block (most do: then the message is complete by now)
            self._body_deadline = self.loop.call_later(BODY_TIMEOUT_S, self._body_timed_out)
            self._measure_body_rate()

    def eof_received(self) -> bool | None:
        """The client closed its sending side (a half-close: `nc -N`, a client that shuts down its writes once the
        request is out). uvicorn closed the connection there, so a request in hand was never answered: a create
        made its job, and the client never learnt its id. Now a whole request is answered (and the connection closed
        after it), a body cut short by the close is a 400 `body_unreadable` (the Worker's answer to a body it cannot
        read to its end), and a header block cut short a 400 `bad_request`: each with its log line."""
        self._eof = True
        if self._linger_ends is not None:
            return None  # answered, and the client has closed too: the connection ends (what is written goes first)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.more_body and not cycle.response_started:
                cut = ApiError(400, "body_unreadable", "the client closed its side of the connection before the "
                                                       "request body was whole (its Content-Length, or its last "
                                                       "chunk); send it again whole")
                if self._queued(cycle):
                    # Pipelined behind a request still being answered: its refusal goes out after that answer
                    # (on_response_complete), and the connection stays open until then (closing it now lost both).
                    self._deferred = cut
                    return True
                self._answer_refusal(cut)
                return None
            if self._deferred is None:  # (a deferred refusal closes the connection once it is written)
                cycle.keep_alive = False  # the last request the connection takes: answered, then closed
            return True  # keep the connection open for its answer (asyncio stops reading it)
        if self._head_started:
            self._answer_refusal(ApiError(400, "bad_request", "the request is not valid HTTP/1.1 (the client "
                                                              "closed its side before the header block ended)"))
        return None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started = self._message_open = True
        if self._stop_grace is not None:  # the request came: its head deadline guards it from here
            self._stop_grace.cancel()
            self._stop_grace = None
        self._head_bytes = self._head_unparsed = 0
        self._arm_head_deadline()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_bytes += len(url)
        if len(self.url) > URL_LIMIT_BYTES:
            self._refusal = ApiError(414, "uri_too_long", f"the request target is over {URL_LIMIT_BYTES} bytes, "
                                                          "the Worker's URL limit; send long values in a POST body")
            raise self._refusal

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._head_bytes += len(name) + len(value) + _FIELD_LINE_OVERHEAD
        if self._head_bytes > HEAD_LIMIT_BYTES:
            self._refusal = _head_too_large()
            raise self._refusal

    def _date_current(self) -> None:
        """Put this second's Date first in the server's default headers (what uvicorn sends with every answer)
        when it is not there yet: a new list once a second, none per request."""
        field = _date_field()
        headers = self.server_state.default_headers
        if not headers or headers[0] is not field:
            self.server_state.default_headers = [field, *(h for h in headers if h[0] != b"date")]

    def on_headers_complete(self) -> None:
        self._head_started = False
        self._disarm_head_deadline()
        self._date_current()  # the answer's headers are the cycle's copy of the default headers, taken below
        if self.parser.should_upgrade() and _declares_body(self.headers):
            # httptools skips the body of a request that offers an upgrade (the app got an empty body) and parses
            # that body as the next request: refuse it by name instead.
            self._refusal = ApiError(400, "upgrade_not_served", "this port serves HTTP/1.1 only and cannot read a body "
                                     "sent with an `Upgrade` offer (h2c): send it without one (curl: --http1.1; "
                                     "Java's HttpClient: version HTTP_1_1)")
            raise self._refusal
        super().on_headers_complete()
        if self._stopping and self.cycle is not None:
            self.cycle.keep_alive = False  # the last request this connection takes: answered, then closed

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._message_open = False
        self._disarm_body_deadline()

    def _unsupported_upgrade_warning(self) -> None:
        """uvicorn's warning for an Upgrade it does not take. The API offers none (ws "none"): the request is
        answered as HTTP/1.1, as RFC 9110 7.8 allows and the Worker answers it, which is nothing to warn about."""

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request its parser refused; called while the parser's error is handled."""
        refusal, self._refusal = self._refusal, None
        self._answer_refusal(refusal or ApiError(400, "bad_request", f"the request is not valid HTTP/1.1{_parser_reason()}"))

    def _answer_refusal(self, refusal: ApiError) -> None:
        """Answer `refusal` and close the connection: what follows on it cannot be read as a request. A refusal of a
        request pipelined behind one still being answered waits for that answer (on_response_complete): written at
        once, it went out in the earlier request's place, and closing the connection lost that answer (a create's
        client read the next request's 400 as its own, while its job was made and sent to RunPod)."""
        self._disarm_head_deadline()
        if self.transport.is_closing():
            return
        if self._answer_owed():
            self._deferred = refusal
            self.transport.pause_reading()
            return
        response = refusal.to_response()
        self._date_current()
        lines = [f"HTTP/1.1 {refusal.status} {HTTPStatus(refusal.status).phrase}\r\n".encode()]
        lines += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        lines += [f"{name}: {value}\r\n".encode("latin-1") for name, value in response.headers.items()]
        lines += [b"content-length: %d\r\nconnection: close\r\n\r\n" % len(response.body), response.body]
        # Under uvicorn's own event (docs/LOG_EVENTS.md): the line that used to say only "Invalid HTTP request
        # received." now says why, with the status and the client that sent it. Logged before the answer goes out:
        # a client that has read the refusal finds its line.
        client = f"{self.client[0]}:{self.client[1]}" if self.client else None
        self.log.warning("service.server_log", reason=refusal.code, message=refusal.message,
                         http={"status": refusal.status}, data={"logger": "edge_protocol", "client": client})
        self.transport.write(b"".join(lines))
        self._refused_slow = refusal.status == 408
        self.transport.close()

    def _linger(self) -> bool:
        """Asked as the connection is closed: whether the client may still be sending (a request's header block or
        body is not all read, or reading was paused with bytes waiting), and so the socket, half-closed once the
        answer is out, lingers to read and drop what comes until the client closes too, within the bounds (see
        LINGER_TIMEOUT_S). Else it is closed at once, as before: nothing is left to reset it."""
        sock = self._socket
        if (self._eof or self._stopping or self._refused_slow or not (self._message_open or self.flow.read_paused)
                or not sock.can_write_eof()):
            return False
        self._disarm_head_deadline()
        self._disarm_body_deadline()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:  # its task learns it as of a lost connection
            cycle.disconnected = True
            cycle.message_event.set()
            self.flow.resume_writing()
        sock.write_eof()  # the FIN goes after what is written
        self.flow.resume_reading()
        sock.resume_reading()  # also when a refusal paused it, waiting for the answers owed before it
        self._linger_last = now = self.loop.time()
        self._linger_ends = now + LINGER_TIME_S
        self._linger_check = self.loop.call_later(min(LINGER_TIMEOUT_S, LINGER_TIME_S), self._linger_timed_out)
        return True

    def _linger_timed_out(self) -> None:
        # One timer, set for when the client has been silent LINGER_TIMEOUT_S or the whole time is up, not one per read
        self._linger_check = None
        if self._linger_ends is None:
            return
        left = min(self._linger_last + LINGER_TIMEOUT_S, self._linger_ends) - self.loop.time()
        if left > 0:
            self._linger_check = self.loop.call_later(left, self._linger_timed_out)
        else:
            self._socket.abort()

    def _answer_owed(self) -> bool:
        """Whether a request read whole (its body too) is not answered yet: a refusal now is of a later request."""
        cycle = self.cycle
        return cycle is not None and not cycle.more_body and not cycle.response_complete

    def on_response_complete(self) -> None:
        super().on_response_complete()
        refusal = self._deferred
        if refusal is not None and not self._answer_owed():  # the last answer owed before it is out
            self._deferred = None
            self._answer_refusal(refusal)

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(HEAD_TIMEOUT_S, self._head_timed_out)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _disarm_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None
        if self._body_rate_check is not None:
            self._body_rate_check.cancel()
            self._body_rate_check = None

    def _measure_body_rate(self) -> None:
        """Measure the body's rate from now: it must have sent BODY_MIN_RATE_BPS bytes a second after a grace."""
        self._body_rate_from = self.loop.time()
        self._body_received = 0
        self._body_rate_check = self.loop.call_later(BODY_GRACE_S, self._check_body_rate)

    def _check_body_rate(self) -> None:
        # One timer, set for when the bytes received so far stop covering the time taken, not one per chunk.
        self._body_rate_check = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body or cycle.response_started:
            return
        # The server is not reading (nothing the client could send would arrive), or the request waits for the
        # answer to the one before it (uvicorn queued it; a refusal now would go out ahead of that answer).
        if self.flow.read_paused or self._queued(cycle):
            self._measure_body_rate()
            return
        covered = self._body_rate_from + BODY_GRACE_S + self._body_received / BODY_MIN_RATE_BPS
        left = covered - self.loop.time()
        if left > 0:
            self._body_rate_check = self.loop.call_later(left, self._check_body_rate)
            return
        self._answer_refusal(ApiError(408, "body_too_slow", f"the request body arrived slower than "
                                                            f"{BODY_MIN_RATE_BPS} bytes a second (after a grace of "
                                                            f"{BODY_GRACE_S:g} seconds); send it without pauses"))

    def _queued(self, cycle: Any) -> bool:
        """Whether `cycle` is a pipelined request waiting for the answer to the one before it. Answers go out in
        request order: a refusal written now would be read as that earlier request's answer (and closing the
        connection would lose it)."""
        return any(waiting is cycle for waiting, _ in self.pipeline)

    def _body_timed_out(self) -> None:
        self._body_deadline = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body or cycle.response_started:
            return  # the body came, or the app answered without it (and closes the connection after)
        if self._queued(cycle):  # a refusal now would go out ahead of the answer owed to the request before
            self._body_deadline = self.loop.call_later(BODY_TIMEOUT_S, self._body_timed_out)
            return
        self._answer_refusal(ApiError(408, "request_timeout", f"the request body did not arrive whole within "
                                                              f"{BODY_TIMEOUT_S:g} seconds of its header block"))

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_deadline()  # the answer to the request before is still going out: not this one's fault
        elif self._head_started:
            self._answer_refusal(ApiError(408, "request_timeout", f"the request's header block did not arrive "
                                                                  f"within {HEAD_TIMEOUT_S:g} seconds"))
        else:
            self.transport.close()  # a connection that never began a request: nobody is waiting for an answer


def _parser_reason() -> str:
    """The parser's reason for the error being handled (llhttp's fixed texts, never the request's bytes)."""
    error = sys.exc_info()[1]
    if isinstance(error, httptools.HttpParserCallbackError):
        # uvicorn's URL parsing failed in a callback; its text quotes the target (which may hold a signature)
        return " (the request target is not a path)" if isinstance(error.__context__, httptools.HttpParserError) else ""
    return f" ({str(error)[:200]})" if isinstance(error, httptools.HttpParserError) and str(error) else ""


def _declares_body(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0"))
               for name, value in headers)


def _head_too_large() -> ApiError:
    return ApiError(431, "headers_too_large", f"the request line and header fields are over {HEAD_LIMIT_BYTES} "
                                              "bytes, the Worker's limit; send large values in the body")


def _foreign_protocol(data: bytes) -> ApiError | None:
    """A refusal naming the protocol a client spoke instead of HTTP/1.1, for the two a misconfigured client speaks."""
    if data.startswith(b"\x16\x03"):  # a TLS record carrying a handshake: https:// sent to this plain-HTTP port
        return ApiError(400, "tls_not_served", "this port serves plain HTTP; use an http:// URL (TLS is the "
                                               "Worker's edge's job in the cloud)")
    if data.startswith(b"PRI * HTTP/2.0"):  # HTTP/2 with prior knowledge
        return ApiError(400, "http2_not_served", "this port serves HTTP/1.1; send HTTP/1.1 requests (HTTP/2 is "
                                                 "the Worker's edge's job in the cloud)")
    return None


def edge_protocol(log: Logger) -> type[EdgeProtocol]:
    """EdgeProtocol logging on `log`, as uvicorn's `http=` setting takes it (a protocol class)."""
    return type("EdgeProtocol", (EdgeProtocol,), {"log": log})


def _uvicorn_config(service: LocalService) -> uvicorn.Config:
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [_JsonRecords(service.log)]
        logger.propagate = False
        logger.setLevel(logging.WARNING)
    return uvicorn.Config(service.asgi, **{**UVICORN_SETTINGS, "http": edge_protocol(service.log)})


class QuietServer(uvicorn.Server):
    """uvicorn's server, whose main loop sleeps until it is told to stop. uvicorn's wakes 10 times a second, for as
    long as the service runs, to see `should_exit` and to refresh the Date header once a second (which EdgeProtocol
    keeps instead: `date_header` off). Told to stop (`should_exit`, set from any thread), it wakes at once. With a
    setting that needs the ticks (a Date header, `limit_max_requests`, `callback_notify`), uvicorn's own loop runs."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit_requested = False
        self._exit_wakeup: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        super().__init__(config)

    @property  # type: ignore[override]
    def should_exit(self) -> bool:
        return self._exit_requested

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._exit_requested = value
        wakeup = self._exit_wakeup
        if value and wakeup is not None:
            loop, event = wakeup
            with contextlib.suppress(RuntimeError):  # its loop has closed: nothing waits on it any more
                loop.call_soon_threadsafe(event.set)

    async def main_loop(self) -> None:
        config = self.config
        if config.date_header or config.limit_max_requests is not None or config.callback_notify is not None:
            await super().main_loop()
            return
        event = asyncio.Event()
        self._exit_wakeup = (asyncio.get_running_loop(), event)
        await self.on_tick(0)  # the default headers, once: without a Date header they never change
        while not self.should_exit:  # read after the wakeup is in place: a stop set before it is seen here
            await event.wait()
            event.clear()


def _write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    Path(tmp).write_text(f"{port}\n", encoding="utf-8")
    os.replace(tmp, path)


def _run(server: uvicorn.Server, main: Coroutine[Any, Any, None]) -> None:
    # The event loop uvicorn itself would pick (`loop="auto"`: uvloop when installed, as it is with
    # uvicorn's standard extras), which `asyncio.run` would bypass.
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(main)


@dataclass
class RunningServer:
    port: int
    url: str
    service: LocalService
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self.service.db.close()


def start_in_thread(config: ServiceConfig, log_sink: Sink = stdout_sink) -> RunningServer:
    """Serve in a background thread of this process (for the local platform and tests)."""
    service = build_local(config, log_sink)
    sock = listening_socket(config.host, config.port)
    port = sock.getsockname()[1]
    server = QuietServer(_uvicorn_config(service))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # not the main thread
    thread = threading.Thread(target=lambda: _run(server, server.serve(sockets=[sock])), daemon=True,
                              name=f"service-{port}")
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.01)
    if not server.started:
        raise StartupError("the local server thread stopped before it started listening; see its log lines")
    service.log.info("service.listening", data={"host": config.host, "port": port})
    host = f"[{config.host}]" if ":" in config.host else config.host
    return RunningServer(port, f"http://{host}:{port}", service, server, thread)


def serve(config: ServiceConfig, port_file: str | None = None, log_sink: Sink = stdout_sink,
          listen_fd: int | None = None) -> None:
    """Serve in the foreground until SIGTERM/SIGINT, on host:port or on the inherited socket `listen_fd`."""
    sock = inherited_socket(listen_fd) if listen_fd is not None else None
    service = build_local(config, log_sink)
    if sock is None:
        sock = listening_socket(config.host, config.port)
    port = sock.getsockname()[1]
    server = QuietServer(_uvicorn_config(service))

    # uvicorn would re-raise SIGTERM after its graceful shutdown (exit -15, no last log line):
    # handle the signals here instead, so a stop is a clean exit 0.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            # The line first: whoever waits for the port file (a test, the stack host) then finds it in the log
            service.log.info("service.listening", data={"host": config.host, "port": port})
            if port_file:
                _write_port_file(port_file, port)
        await task

    try:
        _run(server, run())
    finally:
        service.log.info("service.stopped", data={"port": port})
        service.db.close()


def _say_on_stderr(text: str) -> None:
    """`text` for whoever reads stderr apart from the log lines on stdout. Where both go to one file (the stack host
    writes them to service.jsonl), the log line already says it, and a plain line would break the file's schema."""
    try:
        out, err = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
        # one regular file (not a terminal, where an operator reads both and wants the plain line too)
        if stat.S_ISREG(out.st_mode) and (out.st_dev, out.st_ino) == (err.st_dev, err.st_ino):
            return
    except (OSError, ValueError, AttributeError):  # a closed or replaced stream: say it anyway
        pass
    print(text, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.local_server", description=" ".join(__doc__.split("\n\n", 1)[0].split()))
    parser.add_argument("--config", required=True, help="service config JSON file (ServiceConfig keys)")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--listen-fd", type=int, metavar="N",
                        help="serve on this inherited listening socket instead of binding host:port")
    args = parser.parse_args(argv)
    log = Logger(stdout_sink)
    try:
        config = load_config(args.config)
        serve(config, args.port_file, listen_fd=args.listen_fd)
    except (ConfigError, WorkflowError, MigrationError) as exc:
        log.error("service.bad_config", message=str(exc), error={"type": type(exc).__name__, "message": str(exc)})
        _say_on_stderr(f"service: error: {exc}")
        return 2
    except (StartupError, OSError) as exc:
        log.error("service.start_failed", message=str(exc), error={"type": type(exc).__name__, "message": str(exc)})
        _say_on_stderr(f"service: error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
