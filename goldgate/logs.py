"""JSON log lines on schema v1 (docs/logging-schema-v1.json) for the orchestrator and emulators."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import IO, Any

SCHEMA = "goldgate.log.v1"
_FIELDS = ("stack", "trace_id", "job_id", "workflow_version", "worker_image_tag")
_lock = threading.Lock()


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLogger:
    """Writes one schema-v1 object per line. Context fields are fixed per logger; `bind` adds more."""

    def __init__(self, component: str, stream: IO[str] | None = None, **context: Any) -> None:
        self.component = component
        self.stream = stream
        self.context = {k: context.get(k) for k in _FIELDS}
        self.context.update({k: v for k, v in context.items() if k not in _FIELDS})

    def bind(self, **context: Any) -> JsonLogger:
        merged = {**self.context, **context}
        return JsonLogger(self.component, self.stream, **merged)

    def log(self, level: str, event: str, **fields: Any) -> None:
        line = {"schema": SCHEMA, "ts": now_rfc3339(), "level": level, "event": event,
                "component": self.component, **self.context, **fields}
        text = json.dumps(line, separators=(",", ":"), default=str)
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
