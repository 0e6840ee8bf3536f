"""Log lines on goldgate.log.v1 (docs/logging-schema-v1.json) for the service.

Every line carries every required field (null when it does not apply). Callers pass paths
without query strings and never pass secrets; `redact` is a last guard for free text.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

SCHEMA = "goldgate.log.v1"
_CONTEXT = ("stack", "trace_id", "job_id", "workflow_version", "worker_image_tag")
_OPTIONAL = ("runpod_job_id", "message", "status", "reason", "duration_ms", "runpod_queue_duration_ms",
             "runpod_run_duration_ms", "e2e_ms", "http", "error", "data")
_FIELDS = frozenset(_CONTEXT + _OPTIONAL)
_LIMITS = {"message": 4000, "reason": 200, "status": 32, "workflow_version": 64, "worker_image_tag": 256,
           "job_id": 128, "runpod_job_id": 128, "stack": 64}

_LIMITED = tuple(_LIMITS.items())

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3, "critical": 4}
_KEPT_DATA = " kept_data"  # a note key no log field has: what annotate_data adds to the line's `data`
_NOTE: ContextVar[dict[str, Any] | None] = ContextVar("service_request_log", default=None)
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str, ensure_ascii=False, check_circular=False)
# A signature in a signed URL (webhook `?job=..&sig=<hex>`, result `?exp=..&sig=<hex>`): any case, as
# verification lower-cases it.
_SIGNATURE = re.compile(r"(?<=sig=)[0-9A-Fa-f]+")
_REDACTED = "[redacted]"

Sink = Callable[[str], None]


_cut = False  # the last line stdout refused may be in the file in part


def stdout_sink(line: str) -> None:
    """One line to stdout. A write the disk refuses (ENOSPC; EFBIG past a file size limit) costs lines, never
    the answer: raised, it turned a create RunPod had taken into a 500, and its client's retry ran and billed
    the job again. The stream may have written part of the refused line: the next line starts on a line of its
    own."""
    global _cut
    try:
        if _cut:
            _cut = False
            line = "\n" + line
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except OSError:
        _cut = True


_SECOND: tuple[int, str] = (0, "1970-01-01T00:00:00")


def rfc3339_ms(epoch_s: float) -> str:
    """UTC RFC 3339 with milliseconds and Z (`2026-11-28T17:52:40.123Z`): sorts lexically in time
    order. Exactly what datetime's isoformat(timespec="milliseconds") writes, at a fraction of the
    cost: the text up to the second is kept from the previous call."""
    global _SECOND
    frac, whole = math.modf(epoch_s)
    second, micros = int(whole), round(frac * 1e6)  # as datetime.fromtimestamp rounds
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    elif micros < 0:
        second, micros = second - 1, micros + 1_000_000
    cached = _SECOND
    if cached[0] != second:
        cached = _SECOND = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{cached[1]}.{micros // 1000:03d}Z"


def now_rfc3339() -> str:
    return rfc3339_ms(time.time())


class _RequestLine:
    """The context of Logger.request_line: its note is the one `log` folds events into until it ends.
    A class, not a generator: it is entered once per request."""

    __slots__ = ("_token",)

    def __enter__(self) -> dict[str, Any]:
        note: dict[str, Any] = {}
        self._token = _NOTE.set(note)
        return note

    def __exit__(self, *exc: object) -> None:
        _NOTE.reset(self._token)


class Logger:
    """Writes one JSON object per line to `sink`. `secrets` are masked from free text as a last guard."""

    def __init__(self, sink: Sink = stdout_sink, secrets: Iterable[str] = (), **context: Any) -> None:
        self.sink = sink
        self.secrets = tuple(s for s in secrets if s)
        # What each secret looks like in the encoded line: a '"' or '\\' in it is escaped there.
        self._needles = tuple(_ENCODER.encode(s)[1:-1] for s in self.secrets)
        self.context = {k: context.get(k) for k in _CONTEXT}
        self._bound = False  # a root logger: its context is the defaults `emit` writes under every line

    def bind(self, **context: Any) -> Logger:
        child = Logger.__new__(Logger)
        child.sink, child.secrets, child._needles = self.sink, self.secrets, self._needles
        child.context = self.context.copy()
        child._bound = True
        for key, value in context.items():
            if key in child.context:  # it holds exactly the _CONTEXT keys
                child.context[key] = value
        return child

    def request_line(self) -> _RequestLine:
        """Within it, events are folded into one line per request (the last event names it, the
        highest level wins), which the caller writes with `write_request_line`: one canonical
        line per request keeps the log readable and cheap."""
        return _RequestLine()

    def annotate(self, **context: Any) -> None:
        """Names the job a request is about on its line without naming the line (a status read stays
        `http.request`): a job's lines, its reads too, can then be followed by its job_id and trace_id."""
        note = _NOTE.get()
        if note is not None:
            note.update((k, v) for k, v in context.items() if k in _CONTEXT and v is not None)

    def annotate_data(self, **data: Any) -> None:
        """Adds to the `data` of the request's line whichever event names it: an event's own `data` replaces
        the earlier events' (the line's last event wins), this is kept beside it."""
        note = _NOTE.get()
        if note is not None:
            note.setdefault(_KEPT_DATA, {}).update(data)

    def write_request_line(self, note: dict[str, Any], **fields: Any) -> None:
        level = note.pop("level", "info")
        event = note.pop("event", "http.request")
        kept = note.pop(_KEPT_DATA, None)
        if kept:
            note["data"] = {**(note.get("data") or {}), **kept}
        note.update(fields)  # the note ends with its line: no copy of it
        self.emit(level, event, note)

    def log(self, level: str, event: str, own_line: bool = False, **fields: Any) -> None:
        """`own_line`: a line of its own even within a request, for an event an alert keys on that must not take the
        name of the request's line from the event that names it (a webhook's `job.finished`)."""
        note = _NOTE.get()
        if note is None or own_line:
            self.emit(level, event, {**{k: v for k, v in self.context.items() if v is not None}, **fields})
            return
        # Only a bound logger's context goes into the note: a root logger's is the defaults the
        # request line gets anyway, and folding it in would replace a job's context (its trace,
        # its image) with the stack's when the app's own logger names the line last (http.refused).
        if self._bound:
            for key, value in self.context.items():
                if value is not None:
                    note[key] = value
        note.update(fields)
        note["event"] = event
        if _LEVELS[level] >= _LEVELS.get(note.get("level", "debug"), 0):
            note["level"] = level

    def emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        line: dict[str, Any] = {"schema": SCHEMA, "ts": now_rfc3339(), "level": level, "event": event,
                                "component": "service", **self.context}
        for key, value in fields.items():
            if key in _FIELDS:
                line[key] = value
        # A field over its limit is masked before it is cut: a secret across the cut must not leave its first part.
        for key, limit in _LIMITED:
            value = line.get(key)
            if value.__class__ is str and len(value) > limit:
                line[key] = masked(value, self.secrets)[: limit - 1] + "…"
        error = line.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = error["message"]
            line["error"] = {**error, "message": masked(message, self.secrets)[:4000] if len(message) > 4000
                             else message}
        text = _ENCODER.encode(line)
        leaked = "=" in text and "sig=" in text  # "=" first: one memchr, and most lines have none
        if not leaked:
            for needle in self._needles:  # one substring search per secret; the common case finds none
                if needle in text:
                    leaked = True
                    break
        if leaked:
            # Mask the values, not the encoded text (where a secret is escaped, or a near miss such as
            # "\\t" + "ok-..." would be cut mid-escape), then encode again.
            text = _ENCODER.encode(masked(line, self.secrets))
        self.sink(text)

    def debug(self, event: str, **fields: Any) -> None:
        self.log("debug", event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self.log("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.log("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.log("error", event, **fields)


def masked(value: Any, secrets: tuple[str, ...]) -> Any:
    """`value` with every secret and URL signature in its strings (keys too) replaced by [redacted]."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, _REDACTED)
        return _SIGNATURE.sub(_REDACTED, value) if "sig=" in value else value
    if isinstance(value, dict):
        return {masked(k, secrets): masked(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v, secrets) for v in value]
    if value is None or isinstance(value, (int, float)):
        return value
    return masked(str(value), secrets)  # what the encoder's default=str would write


def failure_logged(note: dict[str, Any]) -> bool:
    """Whether a request's handler logged its failure at error under an event of its own (job.submit_failed,
    webhook.refused, ...): that event, which says what failed, then names the line, not http.refused or
    http.unhandled."""
    return _LEVELS.get(note.get("level", "debug"), 0) >= _LEVELS["error"]


# What error_field keeps of an exception's text: a bound on memory only. The logger masks the secrets in it, then
# cuts it to 4,000 characters; masking turns each secret into "[redacted]", so a text cut at N characters is at
# least 10 * N / len(secret) long once masked, and a secret cut in half at N lands past 4,000 (and is cut away)
# for any secret up to N / 400 = 2,500 characters. At twice the logged length a text full of 32-character
# secrets came out short enough to keep the first part of the one cut in half.
_MAX_EXCEPTION_CHARS = 1_000_000


def error_field(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc)[:_MAX_EXCEPTION_CHARS] or type(exc).__name__}
