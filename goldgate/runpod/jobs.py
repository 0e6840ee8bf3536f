"""RunPod serverless data-plane client: submit, read, cancel and retry jobs on one endpoint.

Usage::

    from goldgate.runpod import DataPlaneClient, JobPolicy

    with DataPlaneClient(api_key, endpoint_id) as ep:   # base https://api.runpod.ai/v2/<endpoint_id>
        job = ep.run({"prompt": "..."}, webhook="https://.../hook", policy=JobPolicy(600_000, 86_400_000))
        st = ep.status(job.id)        # JobStatus: status, delay_time_ms, execution_time_ms, output, error
        ep.health()                   # Health: jobs and workers counters

`DataPlaneClient.for_endpoint_base(key, "http://127.0.0.1:PORT/v2/<id>")` takes a full endpoint base.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from goldgate.runpod.errors import RunPodProtocolError
from goldgate.runpod.transport import CALL_DEADLINE_S, ClientBase, RetryPolicy, Transport

DEFAULT_DATA_BASE = "https://api.runpod.ai/v2"
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
JOB_STATUSES = frozenset({"IN_QUEUE", "IN_PROGRESS"}) | TERMINAL_STATUSES
RUNSYNC_DEFAULT_WAIT_S = 90.0  # how long /runsync holds a call when not told (RunPod's default)


@dataclass(frozen=True)
class JobPolicy:
    """RunPod's per-job policy: executionTimeout and ttl in milliseconds."""

    execution_timeout_ms: int | None = None
    ttl_ms: int | None = None
    low_priority: bool | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.execution_timeout_ms is not None:
            out["executionTimeout"] = int(self.execution_timeout_ms)
        if self.ttl_ms is not None:
            out["ttl"] = int(self.ttl_ms)
        if self.low_priority is not None:
            out["lowPriority"] = bool(self.low_priority)
        return out


@dataclass(frozen=True)
class JobStatus:
    """A job as /run, /status, /cancel or /retry report it. Times are milliseconds (None until known)."""

    id: str
    status: str
    delay_time_ms: int | None = None
    execution_time_ms: int | None = None
    output: Any = None
    error: Any = None
    worker_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_wire(cls, wire: Any) -> JobStatus:
        if not isinstance(wire, dict) or "id" not in wire or "status" not in wire:
            raise RunPodProtocolError("RunPod job JSON lacks 'id' or 'status': the API changed or the endpoint "
                                      "base URL is wrong")
        return cls(id=str(wire["id"]), status=str(wire["status"]), delay_time_ms=wire.get("delayTime"),
                   execution_time_ms=wire.get("executionTime"), output=wire.get("output"),
                   error=wire.get("error"), worker_id=wire.get("workerId"), raw=dict(wire))


@dataclass(frozen=True)
class Health:
    """GET /health: job counters (completed, failed, inProgress, inQueue, retried) and worker counters
    (idle, initializing, ready, running, throttled, unhealthy; RunPod's REST v2 WorkerStatus: THROTTLED
    waits on compute capacity, UNHEALTHY fails its health checks). A counter left out reads 0."""

    jobs: Mapping[str, int]
    workers: Mapping[str, int]

    def job_count(self, name: str) -> int:
        return _count(self.jobs, name)

    def worker_count(self, name: str) -> int:
        return _count(self.workers, name)

    @property
    def in_queue(self) -> int:
        return self.job_count("inQueue")

    @property
    def in_progress(self) -> int:
        return self.job_count("inProgress")

    @property
    def throttled(self) -> int:
        return self.worker_count("throttled")

    @property
    def unhealthy(self) -> int:
        return self.worker_count("unhealthy")

    @property
    def up(self) -> int:
        """Workers that take or will take a job: running, idle (or ready) and initializing."""
        return sum(self.worker_count(k) for k in ("running", "idle", "ready", "initializing"))

    @classmethod
    def from_wire(cls, wire: Any) -> Health:
        if not isinstance(wire, dict):
            raise RunPodProtocolError("RunPod /health answered something other than a JSON object")
        return cls(jobs=dict(wire.get("jobs") or {}), workers=dict(wire.get("workers") or {}))


class DataPlaneClient(ClientBase):
    """One serverless endpoint's job API. Every method raises a `RunPodError` subclass on failure.

    POST /run is not retried after a 5xx or a lost response (it could enqueue the job twice); 429 and
    connection failures are retried, see `RetryPolicy`."""

    def __init__(self, api_key: str, endpoint_id: str, base_url: str = DEFAULT_DATA_BASE, *,
                 retry: RetryPolicy | None = None, timeout_s: float = 30.0,
                 transport: httpx.BaseTransport | None = None,
                 event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
                 deadline_s: float = CALL_DEADLINE_S) -> None:
        self.endpoint_id = endpoint_id
        self._http = Transport(f"{base_url.rstrip('/')}/{_seg(endpoint_id, 'endpoint id')}", api_key,
                               what="RunPod serverless endpoint", retry=retry, timeout_s=timeout_s,
                               transport=transport, event_hooks=event_hooks, deadline_s=deadline_s)

    @classmethod
    def for_endpoint_base(cls, api_key: str, endpoint_base: str, **kw: Any) -> DataPlaneClient:
        """From `<base>/v2/<endpoint_id>` as stored in the service config."""
        base, _, endpoint_id = endpoint_base.rstrip("/").rpartition("/")
        if not base or not endpoint_id:
            raise ValueError(f"endpoint base {endpoint_base!r} is not of the form <base>/v2/<endpoint_id>")
        return cls(api_key, endpoint_id, base, **kw)

    def run(self, job_input: Mapping[str, Any], *, webhook: str | None = None,
            policy: JobPolicy | None = None) -> JobStatus:
        return self._read("POST", "/run", JobStatus.from_wire, json=_job_body(job_input, webhook, policy))

    def runsync(self, job_input: Mapping[str, Any], *, webhook: str | None = None,
                policy: JobPolicy | None = None, wait_ms: int | None = None) -> JobStatus:
        """Waits server-side (RunPod's default 90 s, or `wait_ms`); may return IN_QUEUE/IN_PROGRESS."""
        params = {"wait": int(wait_ms)} if wait_ms is not None else None
        wait_s = wait_ms / 1000.0 if wait_ms is not None else RUNSYNC_DEFAULT_WAIT_S
        return self._read("POST", "/runsync", JobStatus.from_wire, json=_job_body(job_input, webhook, policy),
                          params=params, timeout_s=wait_s + 30.0, wait_s=wait_s)

    def status(self, job_id: str) -> JobStatus:
        return self._read("GET", f"/status/{_seg(job_id)}", JobStatus.from_wire)

    def cancel(self, job_id: str) -> JobStatus:
        return self._read("POST", f"/cancel/{_seg(job_id)}", JobStatus.from_wire)

    def retry(self, job_id: str) -> JobStatus:
        """Requeue a FAILED or TIMED_OUT job under the same id."""
        return self._read("POST", f"/retry/{_seg(job_id)}", JobStatus.from_wire)

    def purge_queue(self) -> int:
        """Drop every IN_QUEUE job; returns how many were removed."""
        return self._read("POST", "/purge-queue", lambda body: int((body or {}).get("removed") or 0))

    def health(self) -> Health:
        return self._read("GET", "/health", Health.from_wire)


def _count(counters: Mapping[str, Any], name: str) -> int:
    value = counters.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _job_body(job_input: Mapping[str, Any], webhook: str | None, policy: JobPolicy | None) -> dict[str, Any]:
    if not isinstance(job_input, Mapping):
        raise TypeError("job input must be a mapping (it becomes RunPod's 'input' object)")
    body: dict[str, Any] = {"input": dict(job_input)}
    if webhook:
        body["webhook"] = webhook
    if policy is not None and policy.to_wire():
        body["policy"] = policy.to_wire()
    return body


def _seg(value: str, what: str = "job id") -> str:
    """One path segment: quoted, and never '.' or '..' (httpx resolves those into another path)."""
    if not value or not isinstance(value, str):
        raise ValueError(f"{'an' if what[0] in 'aeiou' else 'a'} {what} is required (got an empty value)")
    if value in (".", ".."):
        raise ValueError(f"{value!r} is not a RunPod {what}")
    return quote(value, safe="")
