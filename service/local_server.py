"""The local server: the service core under uvicorn, over SQLite (WAL, D1 rules) and an S3-protocol
result store, calling RunPod (or its emulator) over httpx.

Start it:

    python -m service.local_server --config /path/to/service.json [--port-file /path/to/port]

`service.json` (mode 0600: it holds secrets) is a JSON object with the ServiceConfig keys of
docs/INTERFACES.md: `stack, api_token, webhook_secret, runpod_api_key, runpod_endpoint_base,
public_base_url, workflows_dir, execution_timeout_ms, ttl_ms, max_body_bytes, signed_url_ttl_s,
gpu_type, gpu_count, price_per_gpu_second, workflow_version, worker_image_tag` and, locally,
`host` (default 127.0.0.1), `port` (0 = pick a free port), `db_path`, `s3_endpoint_url`,
`s3_bucket`, `s3_access_key_id`, `s3_secret_access_key`, and optional `apply_migrations_from`
(a migrations/ directory applied to db_path at start; without it the db must be migrated).

Once listening it writes one log line `service.listening` with `data.port` (and `data.host`) and,
with --port-file, writes the port number to that file (atomically, once it serves).
With --listen-fd N it serves on an inherited listening socket instead of binding host:port. Its
owner (the local stack's host) keeps that socket open across restarts: while one server hands over
to the next, connections wait in the socket's backlog and none is refused, as a Worker deploy
refuses none.
Every line on stdout is a goldgate.log.v1 JSON object. SIGTERM/SIGINT stop it cleanly.
Exit status 2 = bad config (the message says which key), 1 = could not start.

In-process (the local platform, tests): `start_in_thread(config)` returns a RunningServer with
`.port`, `.url` and `.stop()`; `build_local(config)` returns the ASGI app and its parts.
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
import sys
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from service.app import App, create_app
from service.asgi import AsgiService
from service.config import ConfigError, ServiceConfig
from service.httpx_transport import HttpxTransport
from service.logs import Logger, Sink, stdout_sink
from service.migrate import MigrationError, apply_sqlite
from service.ports import StoreUnavailable
from service.runpod import HttpRunPodGateway
from service.s3_store import S3ResultStore
from service.sockets import StartupError, inherited_socket, listening_socket
from service.sqlite_database import SqliteDatabase
from service.workflows import WorkflowError


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
    db = _open_db(config.db_path)  # type: ignore[arg-type]
    if config.apply_migrations_from:
        conn = sqlite3.connect(config.db_path, isolation_level=None)  # type: ignore[arg-type]
        try:
            apply_sqlite(conn, Path(config.apply_migrations_from))
        finally:
            conn.close()
    store = S3ResultStore.connect(config.s3_endpoint_url, config.s3_bucket,  # type: ignore[arg-type]
                                  config.s3_access_key_id, config.s3_secret_access_key)  # type: ignore[arg-type]
    transport = HttpxTransport()
    runpod = HttpRunPodGateway(transport, config.runpod_endpoint_base, config.runpod_api_key, config.runpod_timeout_s)
    app = create_app(config, db, store, runpod, log_sink=log_sink)
    return LocalService(app, AsgiService(app, on_shutdown=transport.aclose), db, app.log)


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
        level = "error" if record.levelno >= logging.ERROR else "warning"
        self.log.log(level, "service.server_log", message=record.getMessage()[:2000], data={"logger": record.name})


# The server settings, shared with bench/webhook_throughput.py's baseline so both measure one stack.
# loop/http "auto": uvloop and httptools when installed (uvicorn's standard extras), else asyncio/h11.
UVICORN_SETTINGS: dict[str, Any] = {"log_config": None, "access_log": False, "lifespan": "on", "timeout_keep_alive": 30,
                                    "log_level": "warning", "server_header": False, "date_header": False,
                                    "loop": "auto", "http": "auto"}


def _uvicorn_config(service: LocalService) -> uvicorn.Config:
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [_JsonRecords(service.log)]
        logger.propagate = False
        logger.setLevel(logging.WARNING)
    return uvicorn.Config(service.asgi, **UVICORN_SETTINGS)


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
    server = uvicorn.Server(_uvicorn_config(service))
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
    server = uvicorn.Server(_uvicorn_config(service))

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
            if port_file:
                _write_port_file(port_file, port)
            service.log.info("service.listening", data={"host": config.host, "port": port})
        await task

    try:
        _run(server, run())
    finally:
        service.log.info("service.stopped", data={"port": port})
        service.db.close()


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
        print(f"service: error: {exc}", file=sys.stderr)
        return 2
    except (StartupError, OSError) as exc:
        log.error("service.start_failed", message=str(exc), error={"type": type(exc).__name__, "message": str(exc)})
        print(f"service: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
