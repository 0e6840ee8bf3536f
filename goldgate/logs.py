"""JSON log lines on schema v1 (docs/logging-schema-v1.json) for the orchestrator and emulators."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any

# The service's masking (secrets, and URL signatures: a webhook's or a result's `sig=`), so both logs hide the same.
from service.logs import masked

SCHEMA = "goldgate.log.v1"
_FIELDS = ("stack", "trace_id", "job_id", "workflow_version", "worker_image_tag")
# Every other top-level field the schema allows (it allows no others: the rest of a call's fields go under `data`).
_OPTIONAL = frozenset({"runpod_job_id", "message", "status", "reason", "duration_ms", "runpod_queue_duration_ms",
                       "runpod_run_duration_ms", "e2e_ms", "http", "error", "data"})
# The schema's maxLength of each text field; a longer value is cut (after masking) rather than making the line invalid.
_LIMITS = {"message": 4000, "reason": 200, "status": 32, "workflow_version": 64, "worker_image_tag": 256,
           "job_id": 128, "runpod_job_id": 128, "stack": 64}
_ERROR_MESSAGE_LIMIT = 4000
_lock = threading.Lock()


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLogger:
    """Writes one schema-v1 object per line. Context fields are fixed per logger; `bind` adds more. A field the
    schema does not name goes under `data`; `secrets` (and URL signatures) are masked in every value."""

    def __init__(self, component: str, stream: IO[str] | None = None, secrets: Iterable[str] = (),
                 **context: Any) -> None:
        self.component = component
        self.stream = stream
        self.secrets = tuple(s for s in secrets if s)
        self.context = {k: context.get(k) for k in _FIELDS}
        self.context.update({k: v for k, v in context.items() if k not in _FIELDS})

    def bind(self, **context: Any) -> JsonLogger:
        merged = {**self.context, **context}
        return JsonLogger(self.component, self.stream, self.secrets, **merged)

    def log(self, level: str, event: str, **fields: Any) -> None:
        line = {"schema": SCHEMA, "ts": now_rfc3339(), "level": level, "event": event,
                "component": self.component, **_on_schema({**self.context, **fields})}
        text = json.dumps(_bounded(masked(line, self.secrets)), separators=(",", ":"), default=str)
        stream = self.stream or sys.stdout
        with _lock:
            stream.write(text + "\n")
            stream.flush()

    def info(self, event: str, **fields: Any) -> None:
        self.log("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.log("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.log("error", event, **fields)


def _on_schema(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` in the schema's shape: its own fields at the top, any other under `data`, `error` an object."""
    top = {k: v for k, v in fields.items() if k in _FIELDS or k in _OPTIONAL}
    extra = {k: v for k, v in fields.items() if k not in top}
    data = top.get("data")
    if data is not None and not isinstance(data, Mapping):
        top["data"] = data = {"value": data}
    if extra:
        top["data"] = {**(data or {}), **extra}
    error = top.get("error")
    if isinstance(error, BaseException):
        top["error"] = {"type": type(error).__name__, "message": str(error)}
    elif error is not None and not (isinstance(error, Mapping) and {"type", "message"} <= error.keys()):
        top["error"] = {"type": "Error", "message": str(error)}
    return top


def _bounded(line: dict[str, Any]) -> dict[str, Any]:
    """`line` with each text field cut to the schema's maxLength (masked first: no secret's first part is left)."""
    for key, limit in _LIMITS.items():
        value = line.get(key)
        if isinstance(value, str) and len(value) > limit:
            line[key] = value[: limit - 1] + "…"
    error = line.get("error")
    if isinstance(error, dict):
        message = str(error.get("message"))
        if len(message) > _ERROR_MESSAGE_LIMIT:
            message = message[: _ERROR_MESSAGE_LIMIT - 1] + "…"
        line["error"] = {**error, "type": str(error.get("type")), "message": message}
    return line
