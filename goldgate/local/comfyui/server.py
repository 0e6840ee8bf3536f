"""A thin HTTP shell over the ComfyUI emulator backend, on 127.0.0.1 only.

Cold start: real ComfyUI does not listen until it has loaded, so during the start-up delay the
socket is bound (the port is known) but not listening, and clients get "connection refused".

Run alone: `python -m goldgate.local.comfyui.server --models DIR [--port N] [--startup-delay S]`.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import queue
import re
import signal
import socket
import sys
import tempfile
import threading
import urllib.parse
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Self

from websockets.frames import Opcode
from websockets.protocol import Protocol, Side, State
from websockets.utils import accept_key

from goldgate.local.serving import ReadDeadlines, WokenOnShutdown
from goldgate.logs import JsonLogger

from . import responses
from .backend import FOLDERS, ComfyBackend, CustomNodeTypes, PromptInvalid
from .stand_ins import custom_node_types

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # ComfyUI's default --max-upload-size (MB)
MAX_WS_MESSAGE_BYTES = 1024 * 1024  # clients only ever send a ping or a close
# What ComfyUI's /view sends as application/octet-stream whatever the file's extension says.
DOWNLOAD_ONLY_TYPES = frozenset({"text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript",
                                 "text/css"})
# How long a client may take (_Handler's deadlines, as goldgate.local.serving.ReadDeadlines keeps them). Real
# ComfyUI's aiohttp holds no thread per connection and closes one idle for its keepalive_timeout (75 s); here each
# connection holds a thread, and without these a client that sent half a request, or trickled it, held its thread
# forever: a connection that begins no request within IDLE_TIMEOUT_S is closed; a request must arrive whole, header
# block and body, within REQUEST_TIMEOUT_S of its first byte (a 408, and the connection closed); an answer the client
# has not taken within WRITE_TIMEOUT_S is dropped with its connection. An open /ws has no read deadline: it is quiet
# for as long as the queue is.
IDLE_TIMEOUT_S = 75.0
REQUEST_TIMEOUT_S = 60.0
WRITE_TIMEOUT_S = 60.0
MAX_CHUNK_LINE_BYTES = 65536  # a chunk size or trailer line: http.server's bound on a header line
MAX_TRAILER_LINES = 100  # http.server's bound on the header lines of a request
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class _Refused(Exception):
    """A request answered before (or instead of) its body is read, as aiohttp refuses it: a length it cannot trust, a
    body over the limit. Its connection is closed: what is left of the body must not be read as the next request."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class _ClientGone(Exception):
    """The client closed its connection before the whole body came (aiohttp answers nothing then either)."""


class _Handler(ReadDeadlines, BaseHTTPRequestHandler):
    server_version = "ComfyUI-emulator/1"
    protocol_version = "HTTP/1.1"
    idle_timeout_s, request_timeout_s, write_timeout_s = IDLE_TIMEOUT_S, REQUEST_TIMEOUT_S, WRITE_TIMEOUT_S
    # Headers and body are two writes: with Nagle on, the body of every answer on a kept-alive connection
    # waits for the client's delayed ACK, ~40 ms (real ComfyUI's aiohttp sends without that delay).
    disable_nagle_algorithm = True

    @property
    def backend(self) -> ComfyBackend:
        return self.server.backend  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        self._length: int | None = 0

    def timed_out(self) -> None:
        self._send(408, b"408: Request Timeout", "text/plain; charset=utf-8")  # aiohttp's

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are logged as JSON lines in _send

    def log_error(self, format: str, *args: Any) -> None:
        # http.server reports malformed requests (bad request line, oversized headers) here, in plain text
        # on stderr by default; the emulator's output lands in worker logs, where every line is v1. A read that timed
        # out is no error: an idle connection closed is routine, and a 408 owed is logged as it is sent.
        if format.startswith("Request timed out"):
            return
        logger: JsonLogger = self.server.logger  # type: ignore[attr-defined]
        logger.warning("http_protocol_error", message=(format % args)[:4000])

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.connection.settimeout(self.write_timeout_s)
        self.send_response(status)
        if self.close_connection:
            # Say so: a client that pools connections would otherwise send its next request into a closed one.
            self.send_header("Connection", "close")
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
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

    def _framing(self) -> int | None:
        """The body's length as the headers frame it, None for a chunked one; a length that cannot be trusted is
        refused as aiohttp's parser (llhttp) refuses it, before routing: `Content-Length: -1` once read until the
        client closed, and two lengths left the rest of the body to be read as the next request."""
        lengths = self.headers.get_all("Content-Length") or []
        codings = self.headers.get_all("Transfer-Encoding")
        if len(lengths) > 1:  # aiohttp: even twice the same
            raise _Refused(400, self._parse_error("Duplicate Content-Length", "Content-Length", lengths[-1]))
        if codings is not None:
            if lengths:
                raise _Refused(400, self._parse_error("Content-Length can't be present with Transfer-Encoding",
                                                      "Content-Length", lengths[0]))
            if ",".join(codings).rsplit(",", 1)[-1].strip(" \t").lower() != "chunked":
                raise _Refused(400, self._parse_error("Request has invalid `Transfer-Encoding`", "Transfer-Encoding",
                                                      ", ".join(codings)))
            return None
        if not lengths:
            return 0
        value = lengths[0].strip(" \t")
        if not (value.isascii() and value.isdigit()):  # a sign, a space, a list, a digit of another script
            raise _Refused(400, self._parse_error("Invalid character in Content-Length", "Content-Length",
                                                  lengths[0]))
        if len(value.lstrip("0")) > 19:  # llhttp keeps it in 64 bits (and int() refuses over 4300 digits: a 500)
            raise _Refused(400, self._parse_error("Content-Length overflow", "Content-Length", lengths[0]))
        return int(value)

    @staticmethod
    def _parse_error(reason: str, name: str, value: str) -> str:
        # aiohttp's answer to a request its parser refuses: the reason, then the header line it stopped at.
        return f"{reason}:\n\n  {f'{name}: {value}'.encode('latin-1', 'backslashreplace')!r}"

    def _body(self, limit: int, too_large: str) -> bytes:
        """The request's body, at most `limit` bytes: a longer one is a 413 (`too_large`), left unread."""
        if self._length is None:
            return self._chunked(limit, too_large)
        if self._length > limit:
            raise _Refused(413, too_large)
        raw = self.rfile.read(self._length) if self._length else b""
        if len(raw) < self._length:
            raise _ClientGone
        return raw

    def _chunked(self, limit: int, too_large: str) -> bytes:
        """A Transfer-Encoding: chunked body, decoded as aiohttp decodes it (chunk extensions ignored, trailers
        read and dropped); refused as soon as its chunk sizes pass `limit`, before their data is read."""
        body = bytearray()
        while True:
            line = self._chunk_line()
            size = line.split(b";", 1)[0].strip(b" \t")
            if not _CHUNK_SIZE.fullmatch(size):
                raise _Refused(400, f"Invalid character in chunk size:\n\n  {line[:200]!r}")
            if not (length := int(size, 16)):
                break
            if len(body) + length > limit:
                raise _Refused(413, too_large)
            chunk = self.rfile.read(length + 2)
            if len(chunk) < length + 2:
                raise _ClientGone
            if not chunk.endswith(b"\r\n"):
                raise _Refused(400, "Expected CRLF after chunk data")
            body += chunk[:-2]
        for _ in range(MAX_TRAILER_LINES):
            if not self._chunk_line():
                return bytes(body)
        raise _Refused(400, f"Too many trailer lines (more than {MAX_TRAILER_LINES})")

    def _chunk_line(self) -> bytes:
        line = self.rfile.readline(MAX_CHUNK_LINE_BYTES + 1)
        if len(line) > MAX_CHUNK_LINE_BYTES:
            raise _Refused(400, f"Chunk line too long (more than {MAX_CHUNK_LINE_BYTES} bytes)")
        if not line.endswith(b"\n"):
            raise _ClientGone
        if not line.endswith(b"\r\n"):
            raise _Refused(400, f"Expected CRLF at the end of a chunk line:\n\n  {line[:200]!r}")
        return line[:-2]

    def _form(self, raw: bytes) -> dict[str, tuple[str | None, bytes]] | None:
        """A multipart/form-data body as {field: (file name or None, bytes)}; None when it is not one."""
        content_type = self.headers.get("Content-Type") or ""
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        if not message.is_multipart() or message.get_content_type() != "multipart/form-data":
            return None
        fields = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str):
                fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
        return fields

    @staticmethod
    def _json_of(raw: bytes) -> Any:
        """The body as aiohttp's request.json() reads it: one that is not JSON (an empty one too) raises, and
        ComfyUI's routes let that escape as their 500, except /interrupt, which takes it as no body."""
        return json.loads(raw.decode())

    def _answer(self, serve: Any) -> None:
        try:
            self._length = self._framing()
            if self.command != "POST" and self._length != 0:
                self.close_connection = True  # its body is never read: it must not be taken for the next request
            serve()
        except _Refused as exc:
            self.close_connection = True
            self._send(exc.status, exc.text.encode(), "text/plain; charset=utf-8")
        except _ClientGone:
            self.close_connection = True  # nothing to answer
        except (ConnectionError, TimeoutError):
            raise  # the client is gone (or too slow: a 408): nothing to answer here
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
        if parts == ["ws"]:
            return self._websocket(query.get("clientId", [""])[0])
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
            if "filename" not in query:
                return self._send(404, b"", "application/octet-stream")
            filename, kind = self.backend.annotated(query["filename"][0], query.get("type", ["output"])[0])
            status, data = self.backend.view(filename, query.get("subfolder", [""])[0], kind)
            if data is None:
                return self._send(status, b"", "application/octet-stream")
            # ComfyUI: the type the file's extension names, except a page, script or style sheet, which is sent as a
            # download (never shown by the browser); the file's name in Content-Disposition.
            name = Path(filename).name
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            # aiohttp writes header values as UTF-8 (http.server would refuse a name beyond latin-1) and refuses a
            # control character in one: such a name is served without the header.
            disposition = {"Content-Disposition": f'filename="{name}"'.encode().decode("latin-1")}
            return self._send(200, data, "application/octet-stream" if kind in DOWNLOAD_ONLY_TYPES else kind,
                              disposition if name.isprintable() else None)
        return self._send(404, b"404: Not Found", "text/plain; charset=utf-8")

    def _post(self) -> None:
        path = [p for p in urllib.parse.urlsplit(self.path).path.split("/") if p]
        if path and path[0] == "api":
            path = path[1:]
        if path == ["upload", "image"]:
            return self._upload_image()
        # aiohttp refuses a body over its client_max_size
        raw = self._body(MAX_BODY_BYTES, f"Maximum request body size {MAX_BODY_BYTES} exceeded")
        if path == ["interrupt"]:
            # ComfyUI: a body that is not JSON is no body, which interrupts whatever runs (a "global interrupt").
            try:
                body = self._json_of(raw)
            except json.JSONDecodeError:
                body = {}
            prompt_id = body.get("prompt_id")
            self.backend.interrupt(str(prompt_id) if prompt_id else None)
            return self._send(200, b"", "text/plain")
        if path not in (["prompt"], ["queue"], ["history"]):
            return self._send(404, b"404: Not Found", "text/plain; charset=utf-8")
        body = self._json_of(raw)  # ComfyUI catches nothing here: a body that is not JSON is its 500
        if path == ["prompt"]:
            if not isinstance(body, dict) or "prompt" not in body:
                return self._json(400, responses.no_prompt())
            # ComfyUI: extra_data as sent, with a top-level client_id written into it.
            extra_data = dict(body["extra_data"]) if isinstance(body.get("extra_data"), dict) else {}
            if "client_id" in body:
                extra_data["client_id"] = body["client_id"]
            # ComfyUI: a prompt_id of any JSON type is taken as its str(); "number" places the prompt in the queue
            # (float() of it: a value that is no number is its 500), else the next number, negated with "front".
            prompt_id = str(body["prompt_id"]) if "prompt_id" in body else None
            number = float(body["number"]) if "number" in body else None
            try:
                prompt_id, number, node_errors = self.backend.submit(body["prompt"], extra_data, prompt_id,
                                                                     number, bool(body.get("front")))
            except PromptInvalid as exc:
                return self._json(400, responses.prompt_rejected(exc))
            return self._json(200, responses.prompt_accepted(prompt_id, number, node_errors))
        # /queue and /history as ComfyUI's: `in` and [] on whatever JSON came (a list without the key does nothing;
        # a number, or a list naming the key, raises: its 500).
        queue = path == ["queue"]
        if "clear" in body and body["clear"]:  # noqa: RUF019 - any JSON, not only an object (no .get)
            if queue:
                self.backend.clear_queue()
            else:
                self.backend.clear_history()
        if "delete" in body:
            delete = [str(x) for x in body["delete"]]
            if queue:
                self.backend.delete_queued(delete)
            else:
                self.backend.clear_history(delete)
        return self._send(200, b"", "text/plain")

    def _websocket(self, client_id: str) -> None:
        """ComfyUI's /ws: the socket of `clientId` (a fresh sid without one) hears the queue status and the
        events of the prompts queued with that client_id, until either side closes."""
        key = self.headers.get("Sec-WebSocket-Key")
        if (self.headers.get("Upgrade") or "").lower() != "websocket" or not key:
            return self._send(400, b"400: Bad Request", "text/plain; charset=utf-8")  # aiohttp: no upgrade
        self.connection.settimeout(self.write_timeout_s)
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(key))
        self.end_headers()
        self.close_connection = True
        # Long-lived by design: no read deadline while it is open (the pump's writes keep theirs).
        self.reader.open_end()
        sid = client_id or uuid.uuid4().hex
        inbox = self.backend.subscribe(sid)
        try:
            self._pump(inbox)
        finally:
            self.backend.unsubscribe(sid, inbox)

    def _pump(self, inbox: queue.SimpleQueue[dict[str, Any]]) -> None:
        """Sends the inbox as text messages; a reader thread feeds what the client sends to the websocket
        protocol (which answers pings and closes) and notices the client leave."""
        ws = Protocol(Side.SERVER, state=State.OPEN, max_size=MAX_WS_MESSAGE_BYTES)
        gone = threading.Event()
        lock = threading.Lock()  # the protocol object is shared by the two threads

        def flush() -> None:
            for data in ws.data_to_send():
                if data:
                    self.wfile.write(data)
                else:  # the close handshake is done: the server closes TCP first (RFC 6455 7.1.1), as aiohttp does
                    self.connection.shutdown(socket.SHUT_WR)

        def read() -> None:
            try:
                while ws.state is not State.CLOSED and (data := self.rfile.read1(65536)):
                    with lock:
                        ws.receive_data(data)
                        for event in ws.events_received():
                            if event.opcode is Opcode.CLOSE:
                                gone.set()
                        flush()
            except OSError:
                pass
            finally:
                gone.set()

        threading.Thread(target=read, name="comfyui-emulator-ws-read", daemon=True).start()
        try:
            while not gone.is_set() and not self.backend.stopped:
                try:
                    message = inbox.get(timeout=0.1)
                except queue.Empty:
                    continue
                with lock:
                    ws.send_text(json.dumps(message).encode())
                    flush()
            with lock:
                if ws.state is State.OPEN:
                    ws.send_close()
                flush()
        except OSError:
            pass  # the client is gone

    def _upload_image(self) -> None:
        form = self._form(self._body(MAX_UPLOAD_BYTES, "413: Request Entity Too Large")) or {}
        filename, data = form.get("image", (None, b""))
        kind = form.get("type", (None, b"input"))[1].decode() or "input"
        if kind not in self.backend.dirs:
            # ComfyUI's get_dir_by_type knows these three; any other type fails inside it, so a 500.
            raise ValueError(f"upload type {kind!r} is not one of {sorted(self.backend.dirs)}")
        if filename is None:
            return self._send(400, b"", "application/octet-stream")
        overwrite = form.get("overwrite", (None, b""))[1].decode() in ("true", "1")
        subfolder = form.get("subfolder", (None, b""))[1].decode()
        stored = self.backend.upload(data, filename, subfolder, kind, overwrite)
        if stored is None:
            return self._send(400, b"", "application/octet-stream")
        return self._json(200, stored)


class _Server(WokenOnShutdown, ThreadingHTTPServer):
    # socketserver's listen backlog of 5 drops connections a burst opens at once (the local RunPod's did: every
    # local HTTP server of goldgate asks for more).
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr when a handler raises (a client that hung up mid-reply,
        # most often); one v1 line says the same thing.
        exc = sys.exc_info()[1]
        self.logger.warning("http_handler_error",  # type: ignore[attr-defined]
                            message=f"request from {client_address[0]}:{client_address[1]} failed",
                            error={"type": type(exc).__name__, "message": str(exc)[:4000]})


def _custom_node_types(models_dir: Path, path: Path | None) -> CustomNodeTypes:
    """The image's custom node types and their stand-ins: `path`, else the custom_nodes.yaml of the local image's
    snapshot the models directory belongs to (`<snapshot>/models` beside `<snapshot>/worker`)."""
    return custom_node_types(path if path is not None else models_dir.parent / "worker" / "custom_nodes.yaml")


class ComfyUIEmulator:
    """Start with `start()` (returns at once; listening begins after `startup_delay_s`), stop with `stop()`."""

    def __init__(self, models_dir: Path, output_dir: Path | None = None, port: int = 0,
                 startup_delay_s: float = 0.0, render_delay_s: float = 0.0, log_stream: IO[str] | None = None,
                 stack: str | None = None, interrupt_lag_s: float = 0.0, hold_dir: Path | None = None,
                 worker_image_tag: str | None = None, custom_nodes_file: Path | None = None) -> None:
        self._tmp = None if output_dir else tempfile.TemporaryDirectory(prefix="comfyui-emulator-out-")
        self.output_dir = Path(output_dir) if output_dir else Path(self._tmp.name)  # type: ignore[union-attr]
        # Uploaded inputs and temp files live only as long as this emulator, like a worker container's.
        self._scratch = tempfile.TemporaryDirectory(prefix="comfyui-emulator-in-")
        scratch = Path(self._scratch.name)
        self.backend = ComfyBackend(Path(models_dir), self.output_dir, scratch / "input", scratch / "temp",
                                    render_delay_s, interrupt_lag_s, hold_dir,
                                    _custom_node_types(Path(models_dir), custom_nodes_file))
        self.startup_delay_s = startup_delay_s
        # It stands in for the ComfyUI inside a worker's container: its lines name the worker's image, which the
        # worker's environment gives (the endpoint's WORKER_IMAGE_TAG) when the caller does not.
        image = worker_image_tag if worker_image_tag is not None else os.environ.get("WORKER_IMAGE_TAG") or None
        self.logger = JsonLogger("comfyui-emulator", log_stream, stack=stack, worker_image_tag=image)
        self._server = _Server(("127.0.0.1", port), _Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.backend = self.backend  # type: ignore[attr-defined]
        self._server.logger = self.logger  # type: ignore[attr-defined]
        self._stop = threading.Event()
        self._listening = threading.Event()
        # Orders listen() against a stop() that comes first (a worker whose preflight fails stops it at once): the
        # socket is not listened on after stop() closed it.
        self._activation = threading.Lock()
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
        with self._activation:
            if self._stop.is_set():
                return
            self._server.server_activate()
            self._listening.set()
        self.logger.info("comfyui_listening", message=f"ComfyUI emulator listening on {self.url}",
                         data={"models_dir": str(self.backend.models_dir), "startup_delay_s": self.startup_delay_s})
        self._server.serve_forever()

    def wait_listening(self, timeout_s: float) -> bool:
        return self._listening.wait(timeout_s)

    def stop(self) -> None:
        with self._activation:
            self._stop.set()
            listening = self._listening.is_set()
        if listening:
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.backend.stop()
        self._scratch.cleanup()
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
