"""JSON log lines on goldgate schema v1 (docs/logging-schema-v1.json), component "worker".

Secrets registered with the logger are scrubbed from every field before a line is written, as a
second line of defence: no code path should hand one to the logger in the first place.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import IO, Any

SCHEMA = "goldgate.log.v1"
COMPONENT = "worker"
_CONTEXT_FIELDS = ("stack", "trace_id", "job_id", "runpod_job_id", "workflow_version", "worker_image_tag")
_REQUIRED = ("stack", "trace_id", "job_id", "workflow_version", "worker_image_tag")
_LIMITS = {"stack": 64, "job_id": 128, "runpod_job_id": 128, "workflow_version": 64, "worker_image_tag": 256,
           "reason": 200, "status": 32}
# Re-entrant: the SDK logs from its SIGTERM handler, which may run while this thread is mid-line.
_lock = threading.RLock()
_REDACTED = "[redacted]"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret and secret in value:
                value = value.replace(secret, _REDACTED)
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secrets) for v in value]
    return value


class WorkerLog:
    """Writes one schema-v1 object per line; `bind` returns a logger with more context (job, trace)."""

    def __init__(self, stream: IO[str] | None = None, secrets: tuple[str, ...] = (), **context: Any) -> None:
        self._stream = stream
        self._secrets = tuple(s for s in secrets if s)
        self._context = {k: context.get(k) for k in _REQUIRED}
        self._context.update({k: v for k, v in context.items() if k in _CONTEXT_FIELDS})

    def bind(self, **context: Any) -> WorkerLog:
        unknown = set(context) - set(_CONTEXT_FIELDS)
        if unknown:
            raise ValueError(f"not a log context field: {sorted(unknown)}")
        return WorkerLog(self._stream, self._secrets, **{**self._context, **context})

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values this logger masks (never empty ones): for a writer that masks a byte stream before it cuts it
        into lines, and must hold back the end of a read that may be the start of one (sdk_logs' ComfyUI relay)."""
        return self._secrets

    def scrub(self, text: str) -> str:
        """`text` with this logger's secrets masked, as every line it writes has them."""
        return _scrub(text, self._secrets)

    def to_stream(self, stream: IO[str] | None) -> WorkerLog:
        """The same logger (context, secrets) writing to another stream."""
        return WorkerLog(stream, self._secrets, **self._context)

    def log(self, level: str, event: str, *, message: str | None = None, **fields: Any) -> None:
        line: dict[str, Any] = {"schema": SCHEMA, "ts": _now(), "level": level, "event": event,
                                "component": COMPONENT, **self._context}
        if message is not None:  # masked before it is cut: a cut secret would escape the mask
            line["message"] = self.scrub(message)[:4000]
        line.update(fields)
        for name, limit in _LIMITS.items():  # an oversized value must not make the line schema-invalid
            if isinstance(line.get(name), str) and len(line[name]) > limit:
                line[name] = line[name][:limit]
        if isinstance(line.get("error"), dict):
            line["error"]["message"] = self.scrub(str(line["error"].get("message", "")))[:4000]
        text = json.dumps(_scrub(line, self._secrets), separators=(",", ":"), default=str)
        stream = self._stream or sys.stdout
        with _lock:
            stream.write(text + "\n")
            stream.flush()

    def info(self, event: str, *, message: str | None = None, **fields: Any) -> None:
        self.log("info", event, message=message, **fields)

    def warning(self, event: str, *, message: str | None = None, **fields: Any) -> None:
        self.log("warning", event, message=message, **fields)

    def error(self, event: str, *, message: str | None = None, **fields: Any) -> None:
        self.log("error", event, message=message, **fields)


def error_field(exc: BaseException, message: str | None = None) -> dict[str, str]:
    """The `error` of a log line. Not cut here: WorkerLog masks the secrets in it, then cuts it, and a cut made
    before the masking would leave the first characters of a secret that straddles it in the line."""
    return {"type": type(exc).__name__, "message": message or str(exc)}
