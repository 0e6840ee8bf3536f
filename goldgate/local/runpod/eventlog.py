"""The emulator's log lines on schema v1: schema fields pass through, everything else goes under `data`."""

from __future__ import annotations

import re
import threading
from typing import IO, Any

from goldgate.logs import JsonLogger

_TOP = {"stack", "trace_id", "job_id", "runpod_job_id", "workflow_version", "worker_image_tag", "message",
        "status", "reason", "duration_ms", "runpod_queue_duration_ms", "runpod_run_duration_ms", "e2e_ms", "http"}
_TRACE = re.compile(r"^[0-9a-f]{32}$")


def job_context(job_input: Any) -> dict[str, Any]:
    """The service's job id and trace id from a RunPod job input (INTERFACES: input.job_id, input.trace_id)."""
    if not isinstance(job_input, dict):
        return {}
    out: dict[str, Any] = {}
    if isinstance(job_input.get("job_id"), str):
        out["job_id"] = job_input["job_id"][:128]
    if isinstance(job_input.get("trace_id"), str) and _TRACE.match(job_input["trace_id"]):
        out["trace_id"] = job_input["trace_id"]
    if isinstance(job_input.get("workflow_version"), str):
        out["workflow_version"] = job_input["workflow_version"][:64]
    return out


class EventLog:
    """info/warning/error(event, **fields) -> one schema-valid line; `error` may be a plain string.
    `close` closes the stream; lines logged after it are dropped."""

    def __init__(self, stream: IO[str] | None, stack: str | None) -> None:
        self._stream = stream
        self._log = JsonLogger("runpod-emulator", stream, stack=stack)
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Close the stream (never stdout). A thread that outlived the emulator's stop, e.g. a webhook sender still
        inside its POST when stop gave up waiting, logs nothing afterwards instead of raising on a closed file."""
        with self._lock:
            self._closed = True
            if self._stream is not None:
                self._stream.close()

    def log(self, level: str, event: str, **fields: Any) -> None:
        with self._lock:
            if not self._closed:
                self._write(level, event, fields)

    def _write(self, level: str, event: str, fields: dict[str, Any]) -> None:
        top = {k: v for k, v in fields.items() if k in _TOP}
        data = {k: v for k, v in fields.items() if k not in _TOP and k != "error"}
        if "reason" in top and isinstance(top["reason"], str):
            top["reason"] = top["reason"][:200]
        error = fields.get("error")
        if isinstance(error, str):
            kind, _, message = error.partition(": ")
            error = {"type": kind if message else "Error", "message": (message or error)[:4000]}
        self._log.log(level, event, **top, error=error, data=data or None)

    def info(self, event: str, **fields: Any) -> None:
        self.log("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.log("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.log("error", event, **fields)
