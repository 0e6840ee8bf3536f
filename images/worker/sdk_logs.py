"""Everything a worker process writes besides its own lines, as schema-v1 lines (docs/logging-schema-v1.json).

The worker's own code logs through WorkerLog. Other writers share the process's stdout/stderr: the runpod
SDK's logger (plain `LEVEL  | message`, or RunPod's own JSON when RUNPOD_ENDPOINT_ID is set), bare print()s
(the SDK's start banner, ...), and Python's own channels (warnings, logging, uncaught exceptions).
`install` routes each into WorkerLog, so every line a worker writes is v1 and scrubbed of its secrets.

ComfyUI is another process: start.sh pipes its output through `python -m <pkg>.sdk_logs comfyui-output`
(`relay_comfyui_output`), which writes each of its lines as one `comfyui.output` line.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import re
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import IO, Any

from .config import ConfigError, load_config
from .logs import SCHEMA, WorkerLog, error_field

# The SDK's levels (rp_logger.LOG_LEVELS, plus TIP which it always prints) -> schema-v1 levels.
SDK_LEVELS = {"TRACE": "debug", "DEBUG": "debug", "INFO": "info", "WARN": "warning", "ERROR": "error", "TIP": "info"}
_SDK_ORDER = ("NOTSET", "TRACE", "DEBUG", "INFO", "WARN", "ERROR")
_V1_PREFIX = '{"schema":"' + SCHEMA + '"'
MAX_TRACEBACK_CHARS = 8000


def sdk_log_route(log: WorkerLog, sdk_logger: Any) -> Callable[..., None]:
    """A drop-in for `RunPodLogger.log(message, message_level="INFO", job_id=None)` writing v1 lines.

    The SDK's filter is kept (its level is read on every call: `set_level` may change it). The job id the
    SDK passes is RunPod's request id, so it goes to `runpod_job_id`; `job_id` is goldgate's own job id,
    which the worker's `job_started` line ties to the same `runpod_job_id`.
    """

    def route(message: Any, message_level: str = "INFO", job_id: Any = None) -> None:
        sdk_level = str(message_level).upper()
        threshold = str(getattr(sdk_logger, "level", "DEBUG")).upper()
        if threshold == "NOTSET":
            return
        if sdk_level != "TIP" and sdk_level in _SDK_ORDER and threshold in _SDK_ORDER \
                and _SDK_ORDER.index(sdk_level) < _SDK_ORDER.index(threshold):
            return
        level = SDK_LEVELS.get(sdk_level, "info")
        log.log(level, f"runpod_sdk.{level}", message=str(message),
                runpod_job_id=str(job_id) if job_id not in (None, "") else None)

    return route


def route_sdk_logger(log: WorkerLog) -> Callable[[], None]:
    """Sends the runpod SDK's logger to `log`; returns the undo.

    RunPodLogger is a process-wide singleton (every SDK module holds the instance `RunPodLogger()` returns)
    and each of its methods (debug, info, warn, error, tip, trace, secret, set_level) ends in `self.log`.
    Setting `log` on that one instance therefore reroutes all of them, including SDK modules imported
    later, without editing SDK module globals or its class. The SDK's message text is kept as is;
    WorkerLog truncates it to the schema's 4000 characters.
    """
    from runpod.serverless.modules.rp_logger import RunPodLogger  # the SDK is only needed once we start it

    sdk_logger = RunPodLogger()
    previous_level = vars(sdk_logger).get("level")
    if not (os.environ.get("RUNPOD_LOG_LEVEL") or os.environ.get("RUNPOD_DEBUG_LEVEL")):
        # Unset, the SDK logs at DEBUG: several lines per job-take poll, hundreds a second when idle.
        # Only the SDK's own variables are read, to respect an operator who chose a level.
        sdk_logger.level = "INFO"
    previous = vars(sdk_logger).get("log")
    sdk_logger.log = sdk_log_route(log, sdk_logger)

    def undo() -> None:
        for name, value in (("log", previous), ("level", previous_level)):
            if value is None:
                vars(sdk_logger).pop(name, None)
            else:
                setattr(sdk_logger, name, value)

    return undo


class _Through(io.TextIOBase):
    """Where a V1LineStream's own wrapped lines go: straight to the real stream, not back through write()
    (which would mix them with the thread's unfinished text)."""

    def __init__(self, owner: V1LineStream) -> None:
        super().__init__()
        self._owner = owner

    def write(self, text: str) -> int:
        self._owner.write_through(text)
        return len(text)


class V1LineStream(io.TextIOBase):
    """A text stream in place of sys.stdout/sys.stderr: v1 lines pass through, any other line is wrapped.

    Lines are assembled per thread (print() writes text and newline in two calls, and several threads
    print), then written to the real stream whole, under one lock, so lines never interleave.
    """

    def __init__(self, target: IO[str], log: WorkerLog, level: str, event: str) -> None:
        super().__init__()
        self.target = target
        self._log = log.to_stream(_Through(self))
        self._level = level
        self._event = event
        self._lock = threading.RLock()  # re-entrant for the same reason as logs._lock
        self._partial: dict[int, str] = {}

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.target.fileno()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text.startswith(_V1_PREFIX) and text.endswith("\n") and text.count("\n") == 1:
            # A logger's whole line in one call: out as is, even if this thread has unfinished text pending.
            self.write_through(text)
            return len(text)
        thread = threading.get_ident()
        pending = self._partial.pop(thread, "") + text
        *complete, rest = pending.split("\n")
        if rest:
            self._partial[thread] = rest
        for line in complete:
            self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        line = line.rstrip("\r")
        if not line.strip():
            return
        if line.startswith(_V1_PREFIX):
            self.write_through(line + "\n")
            return
        # Not ours: one v1 line whose message is the text.
        self._log.log(self._level, self._event, message=line)

    def write_through(self, text: str) -> None:
        """Whole lines to the real stream, one writer at a time."""
        with self._lock:
            self.target.write(text)
            self.target.flush()

    def flush(self) -> None:
        with self._lock:
            self.target.flush()

    def drain(self) -> None:
        """Writes out every thread's unterminated text (at exit, or before the stream is put back)."""
        for thread in list(self._partial):
            rest = self._partial.pop(thread, "")
            if rest:
                self._emit(rest)
        self.flush()


class _V1Handler(logging.Handler):
    """Python `logging` records (boto3, urllib3, asyncio, ...) as v1 lines."""

    def __init__(self, log: WorkerLog) -> None:
        super().__init__()
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = ("critical" if record.levelno >= logging.CRITICAL else "error" if record.levelno >= logging.ERROR
                     else "warning" if record.levelno >= logging.WARNING
                     else "info" if record.levelno >= logging.INFO else "debug")
            self._log.log(level, "python_log", message=self.format(record), data={"logger": record.name})
        except Exception:  # noqa: BLE001 - logging's own contract: a failing handler reports, never raises
            self.handleError(record)


def _traceback_text(log: WorkerLog, exc_type: type[BaseException], exc: BaseException,
                    tb: TracebackType | None) -> str:
    """The traceback's last MAX_TRACEBACK_CHARS, masked before it is cut: a cut secret would escape the mask."""
    text = log.scrub("".join(traceback.format_exception(exc_type, exc, tb)))
    return text if len(text) <= MAX_TRACEBACK_CHARS else "...\n" + text[-MAX_TRACEBACK_CHARS:]


def install(log: WorkerLog) -> Callable[[], None]:
    """Routes the SDK's logger, stray prints, warnings, logging and uncaught exceptions to `log` as v1
    lines (stdout for output, stderr for warnings and crashes, as before). Call it once at start-up,
    before `runpod.serverless.start`; returns the undo (for tests running it in-process).
    """
    saved = (sys.stdout, sys.stderr, warnings.showwarning, sys.excepthook, threading.excepthook)
    root = logging.getLogger()
    saved_handlers = list(root.handlers)
    out = sys.stdout if isinstance(sys.stdout, V1LineStream) else V1LineStream(sys.stdout, log, "info", "stdout_line")
    err = sys.stderr if isinstance(sys.stderr, V1LineStream) else V1LineStream(sys.stderr, log, "warning",
                                                                               "stderr_line")
    err_log = log.to_stream(_Through(err))
    sys.stdout, sys.stderr = out, err  # type: ignore[assignment]

    def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                     file: IO[str] | None = None, line: str | None = None) -> None:
        err_log.warning("python_warning", message=f"{category.__name__}: {message}",
                        data={"file": filename, "line": lineno})

    def uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        err_log.log("critical", "worker_crashed", message=f"uncaught {exc_type.__name__}: {exc}",
                    error=error_field(exc), data={"traceback": _traceback_text(err_log, exc_type, exc, tb)})

    def uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        exc = args.exc_value if args.exc_value is not None else args.exc_type()
        err_log.log("error", "thread_crashed",
                    message=f"uncaught {args.exc_type.__name__} in thread "
                            f"{args.thread.name if args.thread else '?'}: {exc}",
                    error=error_field(exc), data={"traceback": _traceback_text(err_log, args.exc_type, exc,
                                                                      args.exc_traceback)})

    warnings.showwarning = show_warning
    sys.excepthook = uncaught
    threading.excepthook = uncaught_in_thread
    # The worker owns its process's output: replace, not add to, the root handlers (an SDK module calls
    # logging.basicConfig at import, which would print plain text to stderr).
    root.handlers = [_V1Handler(err_log)]
    undo_sdk = route_sdk_logger(log)

    def drain() -> None:
        for stream in (out, err):
            stream.drain()

    atexit.register(drain)  # a last print without a newline still becomes a line

    def undo() -> None:
        atexit.unregister(drain)
        undo_sdk()
        drain()
        root.handlers = saved_handlers
        sys.stdout, sys.stderr, warnings.showwarning, sys.excepthook, threading.excepthook = saved

    return undo


# ComfyUI logs its records as bare messages (no level), so a line's level is read from its words: a traceback, an
# exception's last line and ComfyUI's "!!! Exception during processing !!!" or "Error occurred when executing" are
# errors, as is a line that says ERROR, CRITICAL or FATAL; one that says WARNING or WARN is a warning. Case matters:
# "error" inside a word or a sentence ("0 errors") is not a fault.
_COMFY_ERROR = re.compile(r"\b(ERROR|CRITICAL|FATAL)\b|^(Traceback \(most recent call last\)|!!! Exception|Error\b"
                          r"|[A-Za-z_.]*(Error|Exception): )")
_COMFY_WARNING = re.compile(r"\bWARN(ING)?\b")
# Longest piece of one line in one event: the schema's `message` holds 4000 characters, and a longer line is cut into
# pieces, not truncated (bytes: a UTF-8 character may be split between two pieces, and shows as U+FFFD in each).
COMFY_PIECE_BYTES = 4000
_LINE_ENDS = re.compile(rb"[\r\n]")


def comfyui_output_level(line: str) -> str:
    """The level of one line of ComfyUI's output: error, warning or info (see _COMFY_ERROR)."""
    if _COMFY_ERROR.search(line):
        return "error"
    return "warning" if _COMFY_WARNING.search(line) else "info"


def relay_comfyui_output(source: int, log: WorkerLog, fallback: IO[bytes] | None = None) -> None:
    """Reads ComfyUI's output from the file descriptor `source` until end of file and writes each line as one
    `comfyui.output` line (the text in `message`, masked of the worker's secrets).

    It never stops reading before the end: a ComfyUI whose pipe nobody drains blocks once the pipe is full, and one
    whose pipe nobody holds fails its next write. A line that cannot be written as v1 goes to `fallback`, masked.
    `\r` ends a line too: a progress bar redraws itself with it, and one line would grow for the whole render.

    The stream is masked before it is cut into lines and pieces: a secret cut in two (by a piece's end, or by a line
    end inside a multi-line value) would escape the mask in both halves, and two consecutive lines would hold it
    whole. The end of what was read is held back while it may be the start of a secret (`_secret_start`), until more
    comes or the end of file: a secret split between two reads is masked too.
    """
    # The ones the logger's scrub masks.
    secrets = tuple(secret.encode("utf-8", "surrogateescape") for secret in log.secrets)
    held = b""     # read, masked, and possibly the start of a secret the next read completes
    pending = b""  # masked, not yet written: the current line's start
    while True:
        try:
            chunk = os.read(source, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        masked = _mask(held + chunk, log)
        keep = _secret_start(masked, secrets)
        held = masked[len(masked) - keep:] if keep else b""
        pending += masked[:len(masked) - keep]
        *lines, pending = _LINE_ENDS.split(pending)
        while len(pending) > COMFY_PIECE_BYTES:
            lines.append(pending[:COMFY_PIECE_BYTES])
            pending = pending[COMFY_PIECE_BYTES:]
        for raw in lines:
            _relay_line(raw, log, fallback)
    for raw in _LINE_ENDS.split(pending + held):
        _relay_line(raw, log, fallback)


def _mask(data: bytes, log: WorkerLog) -> bytes:
    """`data` with `log`'s secrets masked, every other byte as it was (surrogateescape keeps bytes that are no UTF-8)."""
    return log.scrub(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def _secret_start(data: bytes, secrets: tuple[bytes, ...]) -> int:
    """The length of the longest end of `data` that begins one of `secrets` (0 when none does): what to hold back
    until the next read says whether the secret follows. Shorter than the longest secret, and 0 for ordinary output,
    so a line is not held up waiting for the next."""
    longest = 0
    for secret in secrets:
        for size in range(min(len(secret) - 1, len(data)), longest, -1):
            if data.endswith(secret[:size]):
                longest = size
                break
    return longest


def _relay_line(raw: bytes, log: WorkerLog, fallback: IO[bytes] | None) -> None:
    """One line of ComfyUI's output, already masked, as `comfyui.output` lines of COMFY_PIECE_BYTES at most."""
    for start in range(0, len(raw), COMFY_PIECE_BYTES):
        piece = raw[start:start + COMFY_PIECE_BYTES]
        text = piece.decode("utf-8", "replace")
        if not text.strip():
            continue
        try:
            level = comfyui_output_level(text)
            (log.error if level == "error" else log.warning if level == "warning" else log.info)(
                "comfyui.output", message=text)
        except Exception:  # noqa: BLE001 - a line is never dropped for a fault of the relay's own
            if fallback is not None:
                with contextlib.suppress(OSError):
                    fallback.write(piece + b"\n")  # masked: the piece is cut from the masked stream
                    fallback.flush()


# The variables start.sh removes from ComfyUI's environment (its CREDENTIAL_NAMES: every name that says credential):
# the relay masks each one's value, not only the R2 and RunPod keys the handler reads. A value ComfyUI prints anyway
# (a custom node read HF_TOKEN's token from its cache file, a config dump) is one the operator put there as a secret.
_CREDENTIAL_NAME = re.compile(r"SECRET|TOKEN|KEY|PASSWORD|PASSPHRASE", re.IGNORECASE)
# Shorter values ("1", "true", "yes") would mask ordinary words in every line, and no credential is that short.
MIN_CREDENTIAL_CHARS = 6


def credential_values(env: Mapping[str, str]) -> tuple[str, ...]:
    """The values of `env`'s credential variables (_CREDENTIAL_NAME), each line of a multi-line one too (a PEM key
    printed line by line is masked line by line)."""
    values: list[str] = []
    for name, value in env.items():
        if not _CREDENTIAL_NAME.search(name):
            continue
        for text in (value.strip(), *value.splitlines()):
            text = text.strip()
            if len(text) >= MIN_CREDENTIAL_CHARS and text not in values:
                values.append(text)
    return tuple(values)


def _relay_log() -> WorkerLog:
    """The worker's context and secrets for the relay's lines, from the environment start.sh was given."""
    env = os.environ
    try:
        secrets = load_config(env).secrets()
    except ConfigError:  # a malformed setting is the handler's to report; the relay still masks the credentials
        secrets = ()
    # Bytes that are no UTF-8 (os.environ holds them as lone surrogates, which json.dumps writes as "\udcff", and a
    # strict JSON reader refuses) become U+FFFD, as start.sh's own lines have them.
    context = {name: (env.get(var) or "").encode("utf-8", "surrogateescape").decode("utf-8", "replace").strip() or None
               for name, var in (("stack", "STACK"), ("workflow_version", "WORKFLOW_VERSION"),
                                 ("worker_image_tag", "WORKER_IMAGE_TAG"))}
    # The longest first: a secret holding a shorter one is masked whole, not around the shorter one's mask.
    every = sorted({*secrets, *credential_values(env)}, key=len, reverse=True)
    return WorkerLog(sys.stdout, secrets=tuple(every), **context)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["comfyui-output"]:
        print("usage: python -m <worker package>.sdk_logs comfyui-output  (start.sh pipes ComfyUI's output into it)",
              file=sys.stderr)
        return 2
    # It ends when ComfyUI closes the pipe, not when the container is told to stop: ComfyUI's last lines come after.
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    relay_comfyui_output(sys.stdin.fileno(), _relay_log(), sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
