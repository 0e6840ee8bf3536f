"""Settings of the RunPod emulator: vendor timings, limits and the fault injection a chaos drill asks for."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from goldgate.errors import SpecError
from goldgate.spec import Faults

WEBHOOK_STATUSES = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")


# The stack file's `local.faults` (goldgate.spec.Faults) is the emulator's fault config: one definition.
FaultConfig = Faults


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator behaves. Defaults follow RunPod's documented numbers (vendor facts).

    - webhook_statuses: which terminal states send a webhook. RunPod documents COMPLETED and FAILED;
      for CANCELLED and TIMED_OUT it is unverified, so the default sends none and an operator
      recovers those jobs (`goldgate recover`). Add them to model the other possibility.
    - crash_requeues: a job whose worker died mid-run goes back to the queue this many times (counted
      in health `retried`), then FAILS with a reason. RunPod retries jobs of lost workers; how many
      times is unverified, and 1 keeps a crash-looping image from spinning forever.
    - webhook_drain_s: on stop, how long pending webhooks (of jobs that finished as the workers stopped) may
      still be delivered, retries included, before the rest are dropped.
    - job_take_hold_s: how long a worker's job-take long-poll is held open when the queue is empty.
    - gpu_type: the card a worker is placed on when its endpoint's gpu selection (pools less excludedTypes)
      holds it; otherwise the selection's first card in the catalog (workers list it as gpuTypeId).
    - min_ttl_ms / min_execution_timeout_ms: the smallest policy.ttl (10 s) and policy.executionTimeout
      (5 s) RunPod accepts on /run and /runsync; both are at most 7 days. Tests lower the minimums to
      watch a job expire or time out quickly.
    - logs_dir: where the emulator's and its workers' logs go; None: a temp dir removed on stop().
    - worker_log_max_age_s / worker_log_sweep_s: each worker writes a log of its own (logs_dir/worker-<id>.log),
      and an endpoint that scales to zero between bursts starts new workers all day: every `worker_log_sweep_s`
      the emulator removes the logs of workers that are gone, untouched for `worker_log_max_age_s` (7 days, as
      `goldgate up` does at each start). A running worker's log is kept, however old.
    - workers_dir: the emulator's own directory for its workers' scratch space (workers_dir/<worker id>, each
      worker's TMPDIR), removed as each worker is reaped; what a run that was killed left there is removed on
      start, so point it at a directory of its own. None: a temp dir removed on stop().
    - no_gpu_capacity / workers_fail_at_start: test switches for RunPod's two reasons jobs sit IN_QUEUE with
      workers allocated: a new worker stays THROTTLED (no GPU free in the endpoint's pools) or UNHEALTHY (it
      fails at start), counted in /health and the workers summary, and runs nothing. The backend's attributes
      of the same names flip them while the emulator runs; off (the default), workers start as before.
    - failed_start_unhealthy_s: a worker whose process exits (or cannot start) before it ever asks for a job (an
      image whose start script exits: no models baked, preflight_failed) is reported UNHEALTHY, REST v2's
      "failing health checks", in /health and the workers list for this long after its exit, until a worker of
      the endpoint's current release gets ready, at most workers.max of them. RunPod documents the state, not
      how long it keeps showing a worker that keeps exiting at start: without it a crash loop read as workers
      starting (or a busy endpoint) between its restarts."""

    api_key: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    logs_dir: Path | None = None
    workers_dir: Path | None = None
    state_file: Path | None = None
    home: Path | None = None
    stack: str | None = None
    launcher: str | None = None
    rate_limit_requests: int = 1000
    rate_limit_window_s: float = 10.0
    result_retention_s: float = 1800.0
    sync_result_retention_s: float = 60.0
    default_ttl_ms: int = 86_400_000
    min_ttl_ms: int = 10_000
    min_execution_timeout_ms: int = 5_000
    max_run_payload_bytes: int = 10 * 1024 * 1024
    max_runsync_payload_bytes: int = 20 * 1024 * 1024
    runsync_wait_s: float = 90.0
    webhook_retry_delay_s: float = 10.0
    webhook_attempts: int = 3
    webhook_timeout_s: float = 10.0
    webhook_statuses: tuple[str, ...] = ("COMPLETED", "FAILED")
    webhook_drain_s: float = 5.0
    crash_requeues: int = 1
    job_take_hold_s: float = 2.0
    ping_interval_ms: int = 10_000
    worker_stop_grace_s: float = 5.0
    tick_s: float = 0.1
    worker_log_max_age_s: float = 7 * 86_400.0
    worker_log_sweep_s: float = 3_600.0
    gpu_type: str = "NVIDIA GeForce RTX 4090"
    no_gpu_capacity: bool = False
    workers_fail_at_start: bool = False
    failed_start_unhealthy_s: float = 60.0
    faults: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise SpecError(f"emulator host {self.host!r}: the RunPod emulator binds loopback only (127.0.0.1)")
        if self.rate_limit_requests < 1 or self.rate_limit_window_s <= 0:
            raise SpecError("rate_limit_requests and rate_limit_window_s must be positive")
        if self.webhook_drain_s < 0:
            raise SpecError("webhook_drain_s must not be negative")
        if self.worker_log_max_age_s <= 0 or self.worker_log_sweep_s <= 0:
            raise SpecError("worker_log_max_age_s and worker_log_sweep_s must be positive")
        if self.webhook_attempts < 1:
            raise SpecError("webhook_attempts must be at least 1")
        bad = [s for s in self.webhook_statuses if s not in WEBHOOK_STATUSES]
        if bad:
            raise SpecError(f"webhook_statuses {bad} are not terminal RunPod statuses {list(WEBHOOK_STATUSES)}")


_PATHS = ("logs_dir", "workers_dir", "state_file", "home")


def config_from_mapping(raw: Any, source: str = "config") -> EmulatorConfig:
    """Build an EmulatorConfig from a JSON object; unknown or ill-typed keys are named in the error."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: the emulator config must be a JSON object")
    known = {f.name: f for f in fields(EmulatorConfig)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise SpecError(f"{source}: unknown emulator config keys {unknown}; known: {sorted(known)}")
    kw: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "faults":
            kw[key] = _faults(value, source)
        elif key in _PATHS:
            kw[key] = Path(value) if value is not None else None
        elif key == "webhook_statuses":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SpecError(f"{source}: webhook_statuses must be a list of status names")
            kw[key] = tuple(value)
        else:
            kw[key] = _typed(key, value, known[key].default, source)
    return EmulatorConfig(**kw)


def load_config(path: Path) -> EmulatorConfig:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"emulator config {path} does not exist; write it (goldgate up does) or fix the path") \
            from None
    except (OSError, ValueError) as exc:
        raise SpecError(f"emulator config {path} is not readable JSON: {exc}") from None
    return config_from_mapping(raw, str(path))


def _faults(value: Any, source: str) -> FaultConfig:
    if value is None:
        return FaultConfig()
    if not isinstance(value, dict):
        raise SpecError(f"{source}: faults must be an object")
    known = {f.name: f for f in fields(FaultConfig)}
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise SpecError(f"{source}: unknown faults keys {unknown}; known: {sorted(known)}")
    return FaultConfig(**{k: _typed(f"faults.{k}", v, known[k].default, source) for k, v in value.items()})


def _typed(key: str, value: Any, default: Any, source: str) -> Any:
    if default is None or isinstance(default, str):
        if value is not None and not isinstance(value, str):
            raise SpecError(f"{source}: {key} must be a string")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SpecError(f"{source}: {key} must be true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{source}: {key} must be an integer")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"{source}: {key} must be a number")
        return float(value)
    return value
