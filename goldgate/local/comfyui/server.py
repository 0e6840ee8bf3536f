"""A thin HTTP shell over the ComfyUI emulator backend, on 127.0.0.1 only.

Cold start: real ComfyUI does not listen until it has loaded, so during the start-up delay the
socket is bound (the port is known) but not listening, and clients get "connection refused".

Run alone: `python -m goldgate.local.comfyui.server --models DIR [--port N] [--startup-delay S]`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Self

from goldgate.logs import JsonLogger

from . import responses
from .backend import FOLDERS, ComfyBackend, PromptInvalid

MAX_BODY_BYTES = 10 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    server_version = "ComfyUI-emulator/1"
    protocol_version = "HTTP/1.1"

    @property
    def backend(self) -> ComfyBackend:
        return self.server.backend  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are logged as JSON lines in _send

    def log_error(self, format: str, *args: Any) -> None:
        # http.server reports malformed requests (bad request line, oversized headers) here, in plain text
        # on stderr by default; the emulator's output lands in worker logs, where every line is v1.
        logger: JsonLogger = self.server.logger  # type: ignore[attr-defined]
        logger.warning("http_protocol_error", message=(format % args)[:4000])

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        path = urllib.parse.urlsplit(self.path).path
        logger: JsonLogger = self.server.logger  # type: ignore[attr-defined]
        if status >= 400 or self.command == "POST":
            logger.log("info" if status < 400 else "warning", "http_request",
                       http={"method": self.command, "path": path, "status": status})

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError(f"body larger than {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else {}

    def _answer(self, serve: Any) -> None:
        try:
            serve()
        except (ConnectionError, TimeoutError):
            raise  # the client is gone: nothing to answer
        except Exception as exc:  # noqa: BLE001 - aiohttp answers an unhandled exception with a 500, never silence
            logger: JsonLogger = self.server.logger  # type: ignore[attr-defined]
            logger.error("http_handler_error", message=f"{self.command} {urllib.parse.urlsplit(self.path).path} "
                                                       "raised", error={"type": type(exc).__name__,
                                                                        "message": str(exc)[:4000]})
            self.close_connection = True
            self._send(500, b"500 Internal Server Error\n\nServer got itself in trouble",
                       "text/plain; charset=utf-8")

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def _get(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        parts = [p for p in url.path.split("/") if p]
        if parts and parts[0] == "api":  # newer frontends prefix the API with /api
            parts = parts[1:]
        if parts == ["system_stats"]:
            return self._json(200, responses.system_stats())
        if parts == ["object_info"]:
            return self._json(200, responses.object_info(self.backend))
        if len(parts) == 2 and parts[0] == "object_info":
            return self._json(200, responses.object_info(self.backend, urllib.parse.unquote(parts[1])))
        if parts == ["prompt"]:
            return self._json(200, responses.prompt_info(self.backend))
        if parts == ["queue"]:
            return self._json(200, responses.queue(self.backend))
        if parts == ["history"]:
            raw_max = query.get("max_items", [None])[0]
            max_items = int(raw_max) if raw_max and raw_max.isdigit() else None
            return self._json(200, self.backend.history(max_items=max_items))
        if len(parts) == 2 and parts[0] == "history":
            return self._json(200, self.backend.history(urllib.parse.unquote(parts[1])))
        if parts == ["models"]:
            return self._json(200, ["checkpoints", "diffusion_models", "text_encoders", "vae", "loras"])
        if len(parts) == 2 and parts[0] == "models" and parts[1] in FOLDERS:  # ComfyUI: an unknown folder is a 404
            return self._json(200, self.backend.models(parts[1]))
        if parts == ["view"]:
            status, data = self.backend.view(query["filename"][0], query.get("subfolder", [""])[0],
                                             query.get("type", ["output"])[0]) if "filename" in query else (404, None)
            if data is None:
                return self._send(status, b"", "application/octet-stream")
            return self._send(200, data, "image/png")
        return self._send(404, b"404: Not Found", "text/plain; charset=utf-8")

    def _post(self) -> None:
        path = [p for p in urllib.parse.urlsplit(self.path).path.split("/") if p]
        if path and path[0] == "api":
            path = path[1:]
        try:
            body = self._body()
        except (ValueError, UnicodeDecodeError, RecursionError):
            return self._json(400, {"error": {"type": "invalid_json", "message": "Request body is not valid JSON",
                                              "details": "", "extra_info": {}}, "node_errors": {}})
        if path == ["prompt"]:
            if not isinstance(body, dict) or "prompt" not in body:
                return self._json(400, responses.no_prompt())
            try:
                prompt_id, number, node_errors = self.backend.submit(body["prompt"], body.get("client_id"),
                                                        body.get("prompt_id") if isinstance(body.get("prompt_id"),
                                                                                            str) else None)
            except PromptInvalid as exc:
                return self._json(400, responses.prompt_rejected(exc))
            return self._json(200, responses.prompt_accepted(prompt_id, number, node_errors))
        if path == ["queue"] and isinstance(body, dict):
            if body.get("clear"):
                self.backend.clear_queue()
            if isinstance(body.get("delete"), list):
                self.backend.delete_queued([str(x) for x in body["delete"]])
            return self._send(200, b"", "text/plain")
        if path == ["interrupt"]:
            prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
            self.backend.interrupt(str(prompt_id) if prompt_id else None)
            return self._send(200, b"", "text/plain")
        if path == ["history"] and isinstance(body, dict):
            if body.get("clear"):
                self.backend.clear_history()
            if isinstance(body.get("delete"), list):
                self.backend.clear_history([str(x) for x in body["delete"]])
            return self._send(200, b"", "text/plain")
        return self._send(404, b"404: Not Found", "text/plain; charset=utf-8")


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr when a handler raises (a client that hung up mid-reply,
        # most often); one v1 line says the same thing.
        exc = sys.exc_info()[1]
        self.logger.warning("http_handler_error",  # type: ignore[attr-defined]
                            message=f"request from {client_address[0]}:{client_address[1]} failed",
                            error={"type": type(exc).__name__, "message": str(exc)[:4000]})


class ComfyUIEmulator:
    """Start with `start()` (returns at once; listening begins after `startup_delay_s`), stop with `stop()`."""

    def __init__(self, models_dir: Path, output_dir: Path | None = None, port: int = 0,
                 startup_delay_s: float = 0.0, render_delay_s: float = 0.0, log_stream: IO[str] | None = None,
                 stack: str | None = None, interrupt_lag_s: float = 0.0) -> None:
        self._tmp = None if output_dir else tempfile.TemporaryDirectory(prefix="comfyui-emulator-out-")
        self.output_dir = Path(output_dir) if output_dir else Path(self._tmp.name)  # type: ignore[union-attr]
        self.backend = ComfyBackend(Path(models_dir), self.output_dir, render_delay_s, interrupt_lag_s)
        self.startup_delay_s = startup_delay_s
        self.logger = JsonLogger("comfyui-emulator", log_stream, stack=stack)
        self._server = _Server(("127.0.0.1", port), _Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.backend = self.backend  # type: ignore[attr-defined]
        self._server.logger = self.logger  # type: ignore[attr-defined]
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ComfyUIEmulator:
        self._server.server_bind()  # the port exists from now on, refusing connections until listen()
        self._thread = threading.Thread(target=self._run, name="comfyui-emulator-http", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        if self._stop.wait(self.startup_delay_s):
            return
        self._server.server_activate()
        self._listening.set()
        self.logger.info("comfyui_listening", message=f"ComfyUI emulator listening on {self.url}",
                         data={"models_dir": str(self.backend.models_dir), "startup_delay_s": self.startup_delay_s})
        self._server.serve_forever(poll_interval=0.1)

    def wait_listening(self, timeout_s: float) -> bool:
        return self._listening.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        if self._listening.is_set():
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.backend.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="comfyui-emulator")
    parser.add_argument("--models", type=Path, required=True, help="models directory (checkpoints/, vae/, ...)")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--startup-delay", type=float, default=0.0)
    parser.add_argument("--render-delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    if not args.models.is_dir():
        print(f"comfyui-emulator: models directory {args.models} does not exist", file=sys.stderr)
        return 2
    emulator = ComfyUIEmulator(args.models, args.output, args.port, args.startup_delay, args.render_delay).start()
    print(json.dumps({"url": emulator.url, "port": emulator.port}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
