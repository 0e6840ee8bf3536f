"""The RunPod emulator's state and rules (moto's "backend"): endpoints, releases, workers, jobs, the queue,
registry credentials, rate limits, ttl and result retention, scaling decisions. No HTTP and no processes here: the server
calls in, the fleet executes the scaling plan, the dispatcher sends the webhooks.

Behaviour chosen where RunPod's is undocumented (see also EmulatorConfig):
- A release is created by a change of the container (image, env, args, disk, ports, registry) or of where and
  on what a worker runs (gpu: pools, excludedTypes, count, CUDA; dataCenterIds; networkVolumes): REST v2's
  release diffs name such fields (`gpuCount`, `locations`), and a running worker cannot change its GPUs, place
  or mounts. Workers, scaling, timeout, flashboot and name apply at once, with no release. Workers started on
  an older release are stale; an idle stale worker is cycled (stopped, and replaced if demand or workers.min
  needs it) and is never handed a new job.
- A worker that dies mid-job: the job is requeued (health `retried`) up to `crash_requeues` times,
  then FAILED with a reason.
- /run and /runsync answer 429 while the queue holds max(50, workers.max x 500) jobs (RunPod's documented
  queue limit), besides the per-endpoint rate limit.
- ttl counts from submission and deletes the job in any state (a running one is stopped); finished
  jobs are also deleted `result_retention_s` after they finish (`sync_result_retention_s` for /runsync
  jobs: RunPod keeps those 1 minute, /run ones 30). Deleted jobs answer 404.
- A worker's result over its job's payload limit (10 MB for /run, 20 MB for /runsync) is answered 400, as RunPod's
  job-done answers it; the job then FAILS naming the limit (RunPod's own final state for it is undocumented).
- Test switches for a RunPod without capacity (`no_gpu_capacity`: a new worker is THROTTLED, REST v2's
  "waiting on compute capacity") and for workers that fail at start (`workers_fail_at_start`: UNHEALTHY,
  "failing health checks"): such a worker is allocated (the workers list, its summary and /health count it)
  but no process runs, so queued jobs stay IN_QUEUE. Set from EmulatorConfig, or flipped on the backend
  while it runs; once both are off the held workers start. A held worker no demand needs, or of an older
  release, is let go.
- A worker whose process exits, or cannot start, before it ever asks for a job (a crash loop at start: no models
  baked, preflight_failed) stays reported UNHEALTHY in /health and the workers list for
  `failed_start_unhealthy_s` after its exit, or until a worker of the current release gets ready (at most
  workers.max of them; they hold no slot, so the restarts go on). REST v2 names UNHEALTHY "failing health checks"
  and says nothing of how long a worker that keeps exiting at start shows so.

Registry credentials (/v2/registries); the spec fixes the shapes, these rules are unverified against
RunPod and chosen so that code which passes here is also safe if RunPod is more lenient:
- An endpoint may only name a credential that exists: create or PATCH with an unknown `registry` id
  is a 400 naming it (the spec is silent; RunPod might accept it and fail only at image pull).
- Deleting a credential an endpoint still names is a 400 naming the endpoints, as the spec says for
  pods (for endpoints it is silent; templates silently lose the reference instead). So goldgate's
  replacement order, new credential -> PATCH the endpoint -> delete the old one, is enforced here.
- Credential names are unique per account: a second create with a taken name is a 400.
- Username and password are validated and dropped: the emulator pulls nothing, so it keeps no
  secret and its state file never holds one.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from goldgate.local.runpod.config import EmulatorConfig
from goldgate.local.runpod.faults import FaultPlan
from goldgate.logs import now_rfc3339

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
CONTAINER_FIELDS = ("image", "env", "args", "disk", "ports", "registry")
# What a worker is started with and keeps until it is replaced: a change of any of these is a new release.
RELEASE_FIELDS = (*CONTAINER_FIELDS, "gpu", "dataCenterIds", "networkVolumes")
_SETTINGS_KEYS = ("image", "env", "gpu", "workers", "scaling", "timeout")  # what the rules read from a restored endpoint
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
MAX_POLICY_MS = 7 * 24 * 3600 * 1000  # RunPod: policy.ttl and policy.executionTimeout are at most 7 days
# A worker allocated but not started while a test switch holds it: THROTTLED (no_gpu_capacity: no GPU free in
# the endpoint's pools) or UNHEALTHY (workers_fail_at_start), REST v2's WorkerStatus values.
HELD = frozenset({"THROTTLED", "UNHEALTHY"})
QUEUE_FLOOR, QUEUE_PER_MAX_WORKER = 50, 500  # RunPod: 429 once the queue exceeds 50 and workers.max x 500
# RunPod's per-endpoint limits per rate_limit_window_s (10 s) besides /run's (EmulatorConfig.rate_limit_requests,
# which /runsync shares here: stricter than RunPod's own 2000 for it).
OPERATION_LIMITS = {"status": 2000, "stream": 2000, "cancel": 100, "purge-queue": 2}
# The GPU types the catalog lists, each in its serverless pool (RunPod's pool table: H100 is ADA_80_PRO, the
# 141 GB HOPPER_141 is the H200's). Pool membership is a rule here too: gpu.excludedTypes must name cards of the
# chosen pools.
GPU_CATALOG = (
    # id, name, pool, memory GB, USD per GPU-second (vendor facts, flex)
    ("NVIDIA RTX A4000", "RTX A4000", "AMPERE_16", 16, 0.00016),
    ("NVIDIA GeForce RTX 3090", "RTX 3090", "AMPERE_24", 24, 0.00019),
    ("NVIDIA L4", "L4", "ADA_24", 24, 0.00019),
    ("NVIDIA GeForce RTX 4090", "RTX 4090", "ADA_24", 24, 0.00031),
    ("NVIDIA RTX A6000", "RTX A6000", "AMPERE_48", 48, 0.00034),
    ("NVIDIA L40S", "L40S", "ADA_48_PRO", 48, 0.00053),
    ("NVIDIA A100 80GB PCIe", "A100 PCIe", "AMPERE_80", 80, 0.00076),
    ("NVIDIA H100 80GB HBM3", "H100 SXM", "ADA_80_PRO", 80, 0.00116),
    ("NVIDIA H200", "H200 SXM", "HOPPER_141", 141, 0.00155),
)


class EmulatorError(Exception):
    """A request the emulator refuses; `status` and `title` become the HTTP answer."""

    def __init__(self, status: int, title: str, detail: str, errors: list[str] | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.retry_after_s = retry_after_s


def not_found(what: str) -> EmulatorError:
    return EmulatorError(404, "Not Found", f"{what} not found")


def new_id(n: int = 8) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(n))


@dataclass
class ReleaseRecord:
    id: str
    version: int
    created_at: str
    image: str
    env: dict[str, str]
    diff: list[dict[str, Any]]


@dataclass
class RegistryRecord:
    """A registry credential: only what RunPod ever returns (the login itself is never kept)."""

    id: str
    name: str
    created_at: str


@dataclass
class EndpointRecord:
    id: str
    name: str
    settings: dict[str, Any]  # the wire fields we keep (image, env, gpu, workers, scaling, timeout, ...)
    created_at: str
    version: int = 1
    releases: list[ReleaseRecord] = field(default_factory=list)
    queue: deque[str] = field(default_factory=deque)
    completed: int = 0
    failed: int = 0
    retried: int = 0
    run_times: deque[float] = field(default_factory=deque)
    op_times: dict[str, deque[float]] = field(default_factory=dict)  # the other rate-limited operations
    spawn_blocked_until: float = 0.0
    # The workers that exited before they got ready, each with when (newest last): reported UNHEALTHY a while.
    failed_starts: deque[tuple[WorkerRecord, float]] = field(default_factory=lambda: deque(maxlen=64))

    @property
    def latest(self) -> ReleaseRecord:
        return self.releases[-1]


@dataclass
class WorkerRecord:
    id: str
    endpoint_id: str
    version: int
    image: str
    env: dict[str, str]
    started_mono: float
    started_at: str
    gpu_count: int = 1  # the GPUs it was started with (its release's gpu.count): a running worker keeps them
    gpu_type: str = ""  # the card it was placed on: one of its endpoint's selection (`placement`)
    status: str = "INITIALIZING"  # INITIALIZING, IDLE, RUNNING; `stopping` is separate
    stopping: bool = False
    retire: bool = False  # refresh_worker / stopPod: replace after the current job
    seen: bool = False
    job_ids: set[str] = field(default_factory=set)
    stop_signals: list[str] = field(default_factory=list)
    idle_since: float = 0.0
    last_ping: float = 0.0


@dataclass
class JobRecord:
    id: str
    endpoint_id: str
    input: Any
    webhook: str | None
    execution_timeout_ms: int | None
    ttl_ms: int
    low_priority: bool
    created_mono: float
    status: str = "IN_QUEUE"
    started_mono: float | None = None
    finished_mono: float | None = None
    delay_ms: int | None = None
    execution_ms: int | None = None
    output: Any = None
    error: Any = None
    worker_id: str | None = None
    attempts: int = 0
    crashes: int = 0
    retries: int = 0
    progress: Any = None
    stream: list[Any] = field(default_factory=list)  # a generator handler's chunks not yet read by /stream
    sync: bool = False  # submitted by /runsync: its result is kept a shorter time
    # The request's s3Config: RunPod hands it to the worker with the job and shows it nowhere else (it holds a
    # bucket secret: kept out of repr, /status, webhooks and logs).
    s3_config: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class StartWorker:
    endpoint_id: str
    worker_id: str
    image: str
    env: dict[str, str]
    gpu_count: int = 1  # the endpoint's gpu.count when the worker starts: its RUNPOD_GPU_COUNT
    gpu_type: str = ""  # the card it is placed on (its job-take URL's ?gpu=)


@dataclass(frozen=True)
class StopWorker:
    worker_id: str
    reason: str


class RunPodBackend:
    """All emulator state behind one lock; `changed` wakes long-polls and runsync waiters."""

    def __init__(self, config: EmulatorConfig, *, clock: Callable[[], float] = time.monotonic,
                 on_finished: Callable[[JobRecord], None] | None = None,
                 on_crash: Callable[[str, str], None] | None = None,
                 on_event: Callable[..., None] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.faults = FaultPlan(config.faults)
        self.endpoints: dict[str, EndpointRecord] = {}
        self.workers: dict[str, WorkerRecord] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.registries: dict[str, RegistryRecord] = {}
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.on_finished = on_finished or (lambda job: None)
        self.on_crash = on_crash or (lambda worker_id, job_id: None)
        self.on_event = on_event or (lambda event, **fields: None)
        # The test switches (EmulatorConfig): flipped here under `lock` while the emulator runs.
        self.no_gpu_capacity = config.no_gpu_capacity
        self.workers_fail_at_start = config.workers_fail_at_start

    # ---- control plane ------------------------------------------------------------------------

    def create_endpoint(self, body: dict[str, Any]) -> EndpointRecord:
        if body.get("type", "QUEUE") != "QUEUE":
            raise EmulatorError(400, "Bad Request", "the local emulator models QUEUE endpoints only")
        if "cpu" in body or "gpu" not in body:
            raise EmulatorError(400, "Bad Request", "exactly one of gpu or cpu is required; the local emulator "
                                                    "models GPU endpoints only")
        _no_template(body)
        if not body.get("image"):
            raise EmulatorError(400, "Bad Request", "image is required (templates are not emulated)")
        _idle_timeout_fits(body["scaling"], body.get("workers") or {})
        workers = _scaled_workers({"min": 0, "max": 3, **(body.get("workers") or {})}, body["scaling"])
        _check_workers(workers)
        gpu = _gpu_selection({"count": 1, "allowedCudaVersions": [], "minCudaVersion": None}, body["gpu"])
        settings = {
            "type": "QUEUE", "image": body["image"], "env": dict(body.get("env") or {}),
            "args": body.get("args", ""), "disk": body.get("disk", 20), "ports": list(body.get("ports") or []),
            "registry": body.get("registry"),
            "gpu": gpu,
            "workers": workers, "scaling": dict(body["scaling"]),
            "dataCenterIds": list(body.get("dataCenterIds") or []),
            "networkVolumes": list(body.get("networkVolumes") or []),
            "timeout": int(body.get("timeout", 300_000)), "flashboot": body.get("flashboot", "OFF"),
        }
        with self.lock:
            self._known_registry(settings["registry"])
            ep = EndpointRecord(id=new_id(), name=body["name"], settings=settings, created_at=now_rfc3339())
            ep.releases.append(ReleaseRecord(new_id(), 1, ep.created_at, settings["image"], dict(settings["env"]),
                                             []))
            self.endpoints[ep.id] = ep
            self.changed.notify_all()  # an idle tick wakes: the endpoint may keep workers up (workers.min)
            self.on_event("endpoint.created", endpoint_id=ep.id, image=settings["image"])
            return ep

    def endpoint(self, endpoint_id: str) -> EndpointRecord:
        ep = self.endpoints.get(endpoint_id)
        if ep is None:
            raise not_found(f"endpoint {endpoint_id}")
        return ep

    def update_endpoint(self, endpoint_id: str, body: dict[str, Any]) -> EndpointRecord:
        if "cpu" in body:
            raise EmulatorError(400, "Bad Request", "cpu on a GPU endpoint: the compute family is immutable")
        with self.lock:
            ep = self.endpoint(endpoint_id)
            _no_template(body)
            if "registry" in body:
                self._known_registry(body["registry"])
            before = _flatten(ep.settings | {"name": ep.name})
            new = {k: (dict(v) if isinstance(v, dict) else v) for k, v in ep.settings.items()}
            for key, value in body.items():
                if key == "gpu":
                    new[key] = _gpu_selection(new[key], value)
                elif key == "workers":
                    new[key] = {**new[key], **value}
                elif key == "name":
                    continue
                else:
                    new[key] = value
            _idle_timeout_fits(new["scaling"], body.get("workers") or {})
            new["workers"] = _scaled_workers(new["workers"], new["scaling"])
            _check_workers(new["workers"])
            name = body.get("name", ep.name)
            after = _flatten(new | {"name": name})
            diff = [{"field": k, "old": before.get(k), "new": after.get(k)}
                    for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
            released = any(new.get(f) != ep.settings.get(f) for f in RELEASE_FIELDS)
            ep.settings, ep.name = new, name
            if released:
                ep.version += 1
                ep.releases.append(ReleaseRecord(new_id(), ep.version, now_rfc3339(), new["image"],
                                                 dict(new["env"]), diff))
                self.on_event("endpoint.release", endpoint_id=ep.id, version=ep.version, image=new["image"])
            self.on_event("endpoint.updated", endpoint_id=ep.id, changed=[d["field"] for d in diff])
            self.changed.notify_all()
            return ep

    def delete_endpoint(self, endpoint_id: str) -> list[StopWorker]:
        with self.lock:
            ep = self.endpoint(endpoint_id)
            for job in [j for j in self.jobs.values() if j.endpoint_id == ep.id]:
                if job.status not in TERMINAL:
                    self._finish(job, "CANCELLED", notify=False)
                del self.jobs[job.id]
            del self.endpoints[ep.id]
            stops = []
            for w in list(self.workers.values()):
                if w.endpoint_id == ep.id and w.status in HELD:
                    self._let_go(w)
                elif w.endpoint_id == ep.id and not w.stopping:
                    w.stopping = True
                    stops.append(StopWorker(w.id, "endpoint deleted"))
            self.changed.notify_all()
            self.on_event("endpoint.deleted", endpoint_id=endpoint_id)
            return stops

    # ---- registry credentials -----------------------------------------------------------------

    def create_registry(self, body: dict[str, Any]) -> RegistryRecord:
        """Body already valid against CreateRegistryRequest; username and password are not kept."""
        with self.lock:
            name = body["name"]
            if any(r.name == name for r in self.registries.values()):
                raise EmulatorError(400, "Bad Request", f"a registry credential named {name!r} already exists: "
                                                        "choose another name or delete the old one")
            record = RegistryRecord(id=new_id(), name=name, created_at=now_rfc3339())
            self.registries[record.id] = record
            self.on_event("registry.created", registry_id=record.id, name=name)
            return record

    def registry(self, registry_id: str) -> RegistryRecord:
        record = self.registries.get(registry_id)
        if record is None:
            raise not_found(f"registry {registry_id}")
        return record

    def delete_registry(self, registry_id: str) -> None:
        with self.lock:
            self.registry(registry_id)
            users = sorted(ep.id for ep in self.endpoints.values() if ep.settings.get("registry") == registry_id)
            if users:
                raise EmulatorError(400, "Bad Request", f"registry credential {registry_id} is in use by endpoint(s) "
                                                        f"{', '.join(users)}: point them at another credential "
                                                        "(PATCH registry) before deleting it")
            del self.registries[registry_id]
            self.on_event("registry.deleted", registry_id=registry_id)

    def _known_registry(self, registry_id: Any) -> str | None:
        if registry_id is not None and registry_id not in self.registries:
            raise EmulatorError(400, "Bad Request", f"registry {registry_id} does not exist: create the credential "
                                                    "(POST /v2/registries) and use the id it returns")
        return registry_id

    def live_workers(self, endpoint_id: str) -> list[WorkerRecord]:
        return sorted((w for w in self.workers.values() if w.endpoint_id == endpoint_id),
                      key=lambda w: w.started_mono)

    def failed_start_workers(self, ep: EndpointRecord) -> list[WorkerRecord]:
        """The workers of `ep`'s current release that exited at start within `failed_start_unhealthy_s`, newest
        first, at most workers.max: reported UNHEALTHY (each a copy, its status so), beside the live ones."""
        since = self.clock() - self.config.failed_start_unhealthy_s
        recent = [w for w, when in reversed(ep.failed_starts) if when >= since and w.version >= ep.version]
        return recent[:max(0, int(ep.settings["workers"]["max"]))]

    def _failed_start(self, w: WorkerRecord) -> None:
        ep = self.endpoints.get(w.endpoint_id)
        if ep is not None:
            ep.failed_starts.append((dataclasses.replace(w, status="UNHEALTHY", job_ids=set()), self.clock()))

    def snapshot(self) -> dict[str, Any]:
        """Endpoints, their releases and registry credentials (id and name) as JSON (jobs and workers do
        not survive a restart)."""
        with self.lock:
            return {"endpoints": [{"id": ep.id, "name": ep.name, "settings": ep.settings, "created_at": ep.created_at,
                                   "version": ep.version,
                                   "releases": [vars(r) for r in ep.releases]} for ep in self.endpoints.values()],
                    "registries": [vars(r) for r in self.registries.values()]}

    def restore(self, snapshot: Any) -> None:
        """Load a `snapshot()`; anything else (truncated, another version's shape, hand-edited) is a
        ValueError naming what is wrong, and nothing is loaded."""
        try:
            registries = [RegistryRecord(**r) for r in snapshot.get("registries") or []]
            endpoints = []
            for e in snapshot.get("endpoints") or []:
                settings = e["settings"]
                missing = [k for k in _SETTINGS_KEYS if k not in settings]
                if missing:
                    raise ValueError(f"endpoint {e['id']} settings lack {missing}")
                version = e["version"]
                if isinstance(version, bool) or not isinstance(version, int):
                    raise TypeError(f"endpoint {e['id']} version {version!r} is not an integer")
                releases = [ReleaseRecord(**r) for r in e["releases"]]
                if not releases:
                    raise ValueError(f"endpoint {e['id']} has no releases")
                endpoints.append(EndpointRecord(id=e["id"], name=e["name"], settings=settings,
                                                created_at=e["created_at"], version=version, releases=releases))
        except (AttributeError, KeyError, TypeError) as exc:
            raise ValueError(f"not an emulator state snapshot ({type(exc).__name__}: {exc})") from None
        with self.lock:
            self.registries.update((r.id, r) for r in registries)
            self.endpoints.update((ep.id, ep) for ep in endpoints)

    # ---- data plane ---------------------------------------------------------------------------

    def submit(self, endpoint_id: str, body: Any, payload_bytes: int, *, sync: bool = False) -> JobRecord:
        limit = self.config.max_runsync_payload_bytes if sync else self.config.max_run_payload_bytes
        if payload_bytes > limit:
            raise EmulatorError(413, "Payload Too Large",
                                f"request body is {payload_bytes} bytes; the limit for "
                                f"{'/runsync' if sync else '/run'} is {limit} bytes: upload large inputs "
                                "to object storage and pass keys")
        if not isinstance(body, dict) or "input" not in body:
            raise EmulatorError(400, "Bad Request", "body must be a JSON object with an 'input' field")
        if not isinstance(body["input"], dict):
            raise EmulatorError(400, "Bad Request", "'input' must be a JSON object")
        webhook = body.get("webhook")
        if webhook is not None and (not isinstance(webhook, str)
                                    or not webhook.startswith(("http://", "https://"))):
            raise EmulatorError(400, "Bad Request", "'webhook' must be an http(s) URL")
        policy = {} if body.get("policy") is None else body["policy"]  # only null is no policy: [] or 0 is a 400
        if not isinstance(policy, dict):
            raise EmulatorError(400, "Bad Request", "'policy' must be an object")
        s3_config = body.get("s3Config")
        if s3_config is not None and not isinstance(s3_config, dict):
            raise EmulatorError(400, "Bad Request", "'s3Config' must be an object (accessId, accessSecret, bucketName, "
                                                    "endpointUrl)")
        # RunPod's bounds: ttl 10 s .. 7 days, executionTimeout 5 s .. 7 days (the minimums are configurable).
        for key, least in (("executionTimeout", self.config.min_execution_timeout_ms),
                           ("ttl", self.config.min_ttl_ms)):
            value = policy.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not least <= value <= MAX_POLICY_MS):
                raise EmulatorError(400, "Bad Request", f"policy.{key} must be an integer number of milliseconds "
                                                        f"from {least} to {MAX_POLICY_MS} (7 days)")
        if not isinstance(policy.get("lowPriority", False), bool):
            raise EmulatorError(400, "Bad Request", "policy.lowPriority must be true or false")
        with self.lock:
            ep = self.endpoint(endpoint_id)
            self._rate_limit(ep)
            bound = max(QUEUE_FLOOR, QUEUE_PER_MAX_WORKER * int(ep.settings["workers"]["max"]))
            if len(ep.queue) >= bound:
                raise EmulatorError(429, "Too Many Requests",
                                    f"queue full: endpoint {ep.id} already has {len(ep.queue)} jobs queued (RunPod "
                                    f"refuses more than {QUEUE_FLOOR} and more than workers.max x "
                                    f"{QUEUE_PER_MAX_WORKER}); wait for the queue to drain or raise workers.max")
            job = JobRecord(id=f"{uuid.uuid4()}-u1", endpoint_id=ep.id, input=body["input"], webhook=webhook,
                            execution_timeout_ms=policy.get("executionTimeout"),
                            ttl_ms=int(policy.get("ttl") or self.config.default_ttl_ms),
                            low_priority=bool(policy.get("lowPriority", False)), created_mono=self.clock(),
                            sync=sync, s3_config=s3_config)
            self.jobs[job.id] = job
            ep.queue.append(job.id)
            self.changed.notify_all()
            self.on_event("job.queued", endpoint_id=ep.id, job=job.id)
            return job

    def limit(self, endpoint_id: str, operation: str) -> None:
        """Count one /status, /cancel or /purge-queue request against its rate limit (429 beyond it)."""
        with self.lock:
            self._rate_limit(self.endpoint(endpoint_id), operation)

    def _rate_limit(self, ep: EndpointRecord, operation: str = "run") -> None:
        now = self.clock()
        window = self.config.rate_limit_window_s
        if operation == "run":
            limit, times = self.config.rate_limit_requests, ep.run_times
        else:
            limit, times = OPERATION_LIMITS[operation], ep.op_times.setdefault(operation, deque())
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) >= limit:
            retry_after = max(0.0, times[0] + window - now)
            raise EmulatorError(429, "Too Many Requests",
                                f"rate limit exceeded: {limit} /{operation} requests per "
                                f"{window:g} s on endpoint {ep.id}", retry_after_s=retry_after)
        times.append(now)

    def job(self, endpoint_id: str, job_id: str) -> JobRecord:
        self.endpoint(endpoint_id)
        job = self.jobs.get(job_id)
        if job is None or job.endpoint_id != endpoint_id:
            raise not_found(f"job {job_id} (it may have passed its ttl or result retention)")
        return job

    def wait_terminal(self, endpoint_id: str, job_id: str, wait_s: float) -> JobRecord:
        deadline = self.clock() + wait_s
        with self.changed:
            while True:
                job = self.job(endpoint_id, job_id)
                remaining = deadline - self.clock()
                if job.status in TERMINAL or remaining <= 0:
                    return job
                self.changed.wait(min(remaining, 0.5))

    def cancel(self, endpoint_id: str, job_id: str) -> JobRecord:
        with self.lock:
            self.limit(endpoint_id, "cancel")
            job = self.job(endpoint_id, job_id)
            if job.status not in TERMINAL:
                self._finish(job, "CANCELLED")
            return job

    def retry(self, endpoint_id: str, job_id: str) -> JobRecord:
        with self.lock:
            job = self.job(endpoint_id, job_id)
            if job.status not in ("FAILED", "TIMED_OUT"):
                raise EmulatorError(400, "Bad Request",
                                    f"job {job_id} is {job.status}: only FAILED or TIMED_OUT jobs can be retried")
            ep = self.endpoint(endpoint_id)
            # RunPod: "the previous output is removed": no result, no progress, no times until the new run.
            job.status, job.output, job.error, job.progress, job.stream = "IN_QUEUE", None, None, None, []
            job.worker_id, job.finished_mono, job.execution_ms = None, None, None
            job.started_mono, job.delay_ms = None, None
            job.retries += 1
            ep.retried += 1
            ep.queue.append(job.id)
            self.changed.notify_all()
            return job

    def read_stream(self, endpoint_id: str, job_id: str) -> tuple[JobRecord, list[Any]]:
        """GET /stream/{id}: the job and the chunks it streamed since the last read. RunPod hands each chunk
        out once; the SDK's stream() stops at the first empty read of a finished job."""
        with self.lock:
            self.limit(endpoint_id, "stream")
            job = self.job(endpoint_id, job_id)
            chunks, job.stream = job.stream, []
            return job, chunks

    def purge_queue(self, endpoint_id: str) -> int:
        with self.lock:
            ep = self.endpoint(endpoint_id)
            self._rate_limit(ep, "purge-queue")
            removed = 0
            while ep.queue:
                job_id = ep.queue.popleft()
                if job_id in self.jobs:
                    # Logged while the job is still there, so the line names the service's job and trace.
                    self.on_event("job.purged", endpoint_id=ep.id, job=job_id)
                    del self.jobs[job_id]
                    removed += 1
            return removed

    def health(self, endpoint_id: str) -> dict[str, Any]:
        with self.lock:
            ep = self.endpoint(endpoint_id)
            in_progress = sum(1 for j in self.jobs.values() if j.endpoint_id == ep.id and j.status == "IN_PROGRESS")
            live = [*self.live_workers(ep.id), *self.failed_start_workers(ep)]
            return {
                "jobs": {"completed": ep.completed, "failed": ep.failed, "inProgress": in_progress,
                         "inQueue": len(ep.queue), "retried": ep.retried},
                "workers": {"idle": sum(1 for w in live if w.status == "IDLE" and not w.stopping),
                            "initializing": sum(1 for w in live if w.status == "INITIALIZING"),
                            "running": sum(1 for w in live if w.status == "RUNNING"),
                            "throttled": sum(1 for w in live if w.status == "THROTTLED"),
                            "unhealthy": sum(1 for w in live if w.status == "UNHEALTHY")},
            }

    # ---- worker side (the URLs the runpod SDK calls) ------------------------------------------

    def worker(self, endpoint_id: str, worker_id: str) -> WorkerRecord:
        w = self.workers.get(worker_id)
        if w is None or w.endpoint_id != endpoint_id:
            raise not_found(f"worker {worker_id} of endpoint {endpoint_id}")
        return w

    def _touch(self, w: WorkerRecord) -> None:
        if not w.seen:
            w.seen = True
            w.status = "RUNNING" if w.job_ids else "IDLE"
            w.idle_since = self.clock()
            ep = self.endpoints.get(w.endpoint_id)
            if ep is not None and w.version >= ep.version:  # it passed the start the others failed
                ep.failed_starts.clear()
            self.on_event("worker.ready", worker=w.id, endpoint_id=w.endpoint_id,
                          cold_start_ms=int((self.clock() - w.started_mono) * 1000))

    def take(self, endpoint_id: str, worker_id: str, count: int, hold_s: float) -> list[dict[str, Any]]:
        """Hand up to `count` queued jobs to a worker, holding the long-poll up to `hold_s` for one."""
        deadline = self.clock() + hold_s
        with self.changed:
            while True:
                ep = self.endpoint(endpoint_id)
                w = self.worker(endpoint_id, worker_id)
                self._touch(w)
                if w.stopping or w.retire or w.version < ep.version:
                    return []  # a stale worker finishes what it has and is cycled; it gets nothing new
                taken = self._pop_jobs(ep, w, count)
                if taken:
                    return taken
                remaining = deadline - self.clock()
                if remaining <= 0:
                    return []
                self.changed.wait(min(remaining, 0.5))

    def _pop_jobs(self, ep: EndpointRecord, w: WorkerRecord, count: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        now = self.clock()
        while ep.queue and len(out) < count:
            # Normal-priority jobs first: lowPriority ones wait while anything else is queued.
            pick = next((jid for jid in ep.queue if not self.jobs[jid].low_priority), ep.queue[0])
            ep.queue.remove(pick)
            job = self.jobs[pick]
            job.attempts += 1
            job.started_mono = now
            job.delay_ms = int((now - job.created_mono) * 1000)
            if job.attempts == 1 and self.faults.fail(job.id):
                job.status = "IN_PROGRESS"
                self._finish(job, "FAILED", error="emulated failure injected by faults.failed_rate "
                                                  "(RunPod emulator chaos drill)")
                continue
            job.status, job.worker_id = "IN_PROGRESS", w.id
            w.job_ids.add(job.id)
            w.status = "RUNNING"
            out.append({"id": job.id, "input": job.input,
                        **({"s3Config": job.s3_config} if job.s3_config is not None else {})})
            self.on_event("job.started", endpoint_id=ep.id, job=job.id, worker=w.id,
                          runpod_queue_duration_ms=job.delay_ms)
            if job.attempts == 1 and self.faults.crash(job.id):
                self.on_crash(w.id, job.id)
        return out

    def done(self, endpoint_id: str, worker_id: str, job_id: str, body: Any, result_bytes: int = 0) -> None:
        """A worker's result (or progress update) of `result_bytes` for a job it holds; anything stale is ignored.
        `body` is None when the result was too large to be read at all."""
        with self.lock:
            w = self.worker(endpoint_id, worker_id)
            job = self._held(w, job_id, "job.result_ignored")
            if job is None:
                return
            self._result_fits(job, body, result_bytes)
            if not isinstance(body, dict):
                raise EmulatorError(400, "Bad Request", "job result must be a JSON object")
            if body.get("status") == "IN_PROGRESS":
                job.progress = body.get("output")
                return
            if body.get("error") is not None:
                self._finish(job, "FAILED", error=body["error"])
            else:
                self._finish(job, "COMPLETED", output=body.get("output"))
            if body.get("stopPod"):
                w.retire = True  # refresh_worker: RunPod replaces the worker after this job

    def _result_fits(self, job: JobRecord, body: Any, result_bytes: int) -> None:
        """RunPod's payload limits hold for results too (10 MB for a /run job, 20 MB for /runsync): its job-done
        answers a larger result 400 and the result is lost. The final state of such a job is undocumented; here it
        FAILS naming the limit (a progress update that large is only refused). Call under the lock."""
        limit = self.config.max_runsync_payload_bytes if job.sync else self.config.max_run_payload_bytes
        if result_bytes <= limit:
            return
        reason = (f"the worker's result is {result_bytes} bytes, over RunPod's limit of {limit} bytes for a "
                  f"{'/runsync' if job.sync else '/run'} job: upload large outputs to object storage and return keys")
        if not (isinstance(body, dict) and body.get("status") == "IN_PROGRESS"):
            self._finish(job, "FAILED", error=reason)
        raise EmulatorError(400, "Bad Request", reason)

    def streamed(self, endpoint_id: str, worker_id: str, job_id: str, body: Any) -> None:
        """One chunk a generator handler yielded ({"output": chunk}), for a job the worker holds."""
        if not isinstance(body, dict) or "output" not in body:
            raise EmulatorError(400, "Bad Request", "a stream chunk must be a JSON object with an 'output' field")
        with self.lock:
            job = self._held(self.worker(endpoint_id, worker_id), job_id, "job.stream_ignored")
            if job is not None:
                job.stream.append(body["output"])

    def _held(self, w: WorkerRecord, job_id: str, ignored_event: str) -> JobRecord | None:
        """The job if worker `w` (who just called in) still runs it; else None, logged as `ignored_event` (stale).
        Call under the lock."""
        self._touch(w)
        job = self.jobs.get(job_id)
        if job is None or job.worker_id != w.id or job.status != "IN_PROGRESS":
            self.on_event(ignored_event, job=job_id, worker=w.id, state=None if job is None else job.status)
            return None
        return job

    def stop_signals(self, endpoint_id: str, worker_id: str, hold_s: float) -> list[str]:
        deadline = self.clock() + hold_s
        with self.changed:
            while True:
                w = self.worker(endpoint_id, worker_id)
                self._touch(w)
                if w.stop_signals:
                    out, w.stop_signals = w.stop_signals, []
                    return out
                remaining = deadline - self.clock()
                if w.stopping or remaining <= 0:
                    return []
                self.changed.wait(min(remaining, 0.5))

    def ping(self, endpoint_id: str, worker_id: str) -> None:
        with self.lock:
            w = self.worker(endpoint_id, worker_id)
            self._touch(w)
            w.last_ping = self.clock()

    # ---- lifecycle: finishing, timeouts, ttl, retention ---------------------------------------

    def _finish(self, job: JobRecord, status: str, *, output: Any = None, error: Any = None,
                notify: bool = True) -> None:
        now = self.clock()
        ep = self.endpoints.get(job.endpoint_id)
        if job.status == "IN_QUEUE" and ep is not None and job.id in ep.queue:
            ep.queue.remove(job.id)
        if job.started_mono is not None and job.status == "IN_PROGRESS":
            job.execution_ms = int((now - job.started_mono) * 1000)
        job.status, job.finished_mono = status, now
        job.output, job.error = (output, None) if status == "COMPLETED" else (None, error)
        w = self.workers.get(job.worker_id or "")
        if w is not None and job.id in w.job_ids:
            w.job_ids.discard(job.id)
            if status in ("CANCELLED", "TIMED_OUT"):
                w.stop_signals.append(job.id)
            if not w.job_ids:
                w.status, w.idle_since = "IDLE", now
        if ep is not None:
            ep.completed += status == "COMPLETED"
            ep.failed += status == "FAILED"
        self.changed.notify_all()
        self.on_event("job.finished", endpoint_id=job.endpoint_id, job=job.id, status=status,
                      runpod_queue_duration_ms=job.delay_ms, runpod_run_duration_ms=job.execution_ms)
        if notify:
            self.on_finished(job)

    def expire(self) -> None:
        """Apply execution timeouts, ttl and result retention (called every tick)."""
        with self.lock:
            now = self.clock()
            for job in list(self.jobs.values()):
                ep = self.endpoints.get(job.endpoint_id)
                if job.created_mono + job.ttl_ms / 1000.0 <= now:
                    if job.status not in TERMINAL:
                        self._finish(job, "CANCELLED", notify=False)
                    # Logged while the job is still there, so the line names the service's job and trace.
                    self.on_event("job.expired", job=job.id, reason="ttl")
                    self.jobs.pop(job.id, None)
                    continue
                if job.status in TERMINAL:
                    keep_s = self.config.sync_result_retention_s if job.sync else self.config.result_retention_s
                    if job.finished_mono is not None and job.finished_mono + keep_s <= now:
                        self.on_event("job.expired", job=job.id,
                                      reason="sync_result_retention_s" if job.sync else "result_retention_s")
                        self.jobs.pop(job.id, None)
                    continue
                if job.status == "IN_PROGRESS" and job.started_mono is not None and ep is not None:
                    timeout_ms = job.execution_timeout_ms or ep.settings.get("timeout") or 0
                    if timeout_ms and (now - job.started_mono) * 1000 >= timeout_ms:
                        self._finish(job, "TIMED_OUT", error=f"job exceeded its execution timeout of {timeout_ms} ms")

    def idle_until(self) -> float | None:
        """For an emulator with nothing in hand, when (on `clock`) its tick next has work: the first expiry of a
        finished job's result (`expire`), inf when none is kept. None while it has work in hand, which it ticks
        every `tick_s`: a worker (starting, running, held or stopping), a job not finished, an endpoint that keeps
        workers up. Each change that gives it work (a job, an endpoint's settings) notifies `changed`."""
        with self.lock:
            if self.workers or any(ep.settings["workers"]["min"] > 0 for ep in self.endpoints.values()):
                return None
            until = math.inf
            for job in self.jobs.values():
                if job.status not in TERMINAL or job.finished_mono is None:
                    return None
                keep_s = self.config.sync_result_retention_s if job.sync else self.config.result_retention_s
                until = min(until, job.created_mono + job.ttl_ms / 1000.0, job.finished_mono + keep_s)
            return until

    # ---- workers: scaling plan and process events ---------------------------------------------

    def plan(self) -> list[StartWorker | StopWorker]:
        """What the fleet should do now: start workers for demand, cycle stale ones, stop idle ones."""
        actions: list[StartWorker | StopWorker] = []
        with self.lock:
            now = self.clock()
            for ep in self.endpoints.values():
                live = [w for w in self.live_workers(ep.id) if not w.stopping]
                actions.extend(self._follow_switches(ep, live))
                for w in live:
                    if w.stopping:  # a held worker just let go
                        continue
                    if (w.version < ep.version or w.retire) and not w.job_ids:
                        actions.append(self._stop(w, "stale release: cycling to the latest" if not w.retire
                                                  else "refresh_worker requested by the handler"))
                current = [w for w in live if not w.stopping]
                workers = ep.settings["workers"]
                busy = sum(1 for w in current for _ in w.job_ids)
                # RunPod: a lowPriority job does not trigger worker scaling (running workers still take it).
                demand = busy + sum(1 for jid in ep.queue if not self.jobs[jid].low_priority)
                scaling = ep.settings.get("scaling") or {}
                if scaling.get("type") == "REQUEST_COUNT":
                    demand = math.ceil(demand / max(1, int(scaling.get("requestCount") or 1)))
                desired = max(workers["min"], min(workers["max"], demand))
                # Stale workers still busy do not count as capacity for new jobs.
                usable = [w for w in current if w.version >= ep.version and not w.retire]
                if len(usable) < desired and now >= ep.spawn_blocked_until:
                    room = workers["max"] - len(current)
                    for _ in range(max(0, min(desired - len(usable), room))):
                        w, start = self._start(ep)
                        actions.extend([start] if start is not None else [])
                        usable.append(w)
                idle_timeout = float(workers.get("idleTimeout") or 5)
                keep = max(workers["min"], desired)
                for w in [w for w in usable if w.status in HELD]:  # allocated, never started: let go first
                    if len(usable) <= keep:
                        break
                    self._let_go(w)
                    usable.remove(w)
                for w in list(usable):
                    if len(usable) <= keep:
                        break
                    if w.status == "IDLE" and not w.job_ids and now - w.idle_since >= idle_timeout:
                        actions.append(self._stop(w, "idle timeout"))
                        usable.remove(w)
                over = len(usable) - workers["max"]
                for w in [w for w in usable if not w.job_ids][:max(0, over)]:
                    if w.status in HELD:
                        self._let_go(w)
                    else:
                        actions.append(self._stop(w, "above workers.max"))
        return actions

    def _start(self, ep: EndpointRecord) -> tuple[WorkerRecord, StartWorker | None]:
        """A new worker, and its start; no start while a test switch holds it THROTTLED or UNHEALTHY."""
        rel = ep.latest
        w = WorkerRecord(id=new_id(14), endpoint_id=ep.id, version=rel.version, image=rel.image,
                         env=dict(rel.env), started_mono=self.clock(), started_at=now_rfc3339(),
                         gpu_count=int(ep.settings["gpu"].get("count") or 1),
                         gpu_type=placement(ep.settings["gpu"], self.config.gpu_type))
        self.workers[w.id] = w
        held = self._held_status()
        if held is not None:  # no log line of its own: a test switch (docs/LOG_EVENTS.md lists none)
            w.status = held
            return w, None
        return w, StartWorker(ep.id, w.id, rel.image, dict(rel.env), w.gpu_count, w.gpu_type)

    def _held_status(self) -> str | None:
        if self.workers_fail_at_start:
            return "UNHEALTHY"
        return "THROTTLED" if self.no_gpu_capacity else None

    def _follow_switches(self, ep: EndpointRecord, live: list[WorkerRecord]) -> list[StartWorker]:
        """The held workers of `ep` follow the test switches: started once both are off; an older release's
        are let go."""
        starts: list[StartWorker] = []
        held = self._held_status()
        for w in live:
            if w.status not in HELD:
                continue
            if w.version < ep.version:
                self._let_go(w)
            elif held is not None:
                w.status = held
            else:
                w.status, w.started_mono = "INITIALIZING", self.clock()
                starts.append(StartWorker(ep.id, w.id, w.image, dict(w.env), w.gpu_count, w.gpu_type))
        return starts

    def _let_go(self, w: WorkerRecord) -> None:
        """A held worker has no process to stop: it is simply no longer allocated."""
        w.stopping = True
        self.workers.pop(w.id, None)

    def _stop(self, w: WorkerRecord, reason: str) -> StopWorker:
        w.stopping = True
        self.changed.notify_all()
        return StopWorker(w.id, reason)

    def worker_exited(self, worker_id: str, returncode: int | None) -> None:
        """The process is gone. Jobs it held are requeued or failed (a crash, not a clean stop)."""
        with self.lock:
            w = self.workers.pop(worker_id, None)
            if w is None:
                return
            ep = self.endpoints.get(w.endpoint_id)
            if not w.stopping and not w.seen and ep is not None:
                ep.spawn_blocked_until = self.clock() + 5.0  # a worker that dies at boot: do not spin
                self._failed_start(w)
            for job_id in list(w.job_ids):
                job = self.jobs.get(job_id)
                if job is None or job.status != "IN_PROGRESS":
                    continue
                job.crashes += 1
                if job.crashes <= self.config.crash_requeues and ep is not None:
                    job.status, job.worker_id, job.started_mono = "IN_QUEUE", None, None
                    ep.retried += 1
                    ep.queue.appendleft(job.id)
                    self.on_event("job.requeued", job=job.id, worker=worker_id, returncode=returncode)
                else:
                    self._finish(job, "FAILED", error=f"worker {worker_id} exited (code {returncode}) while "
                                                      "running the job; see the worker's log")
            self.changed.notify_all()

    def worker_failed_to_start(self, worker_id: str, reason: str) -> None:
        with self.lock:
            w = self.workers.pop(worker_id, None)
            ep = self.endpoints.get(w.endpoint_id) if w else None
            if ep is not None and w is not None:
                ep.spawn_blocked_until = self.clock() + 5.0
                self._failed_start(w)
            self.on_event("worker.start_failed", worker=worker_id, reason=reason)


def _no_template(body: dict[str, Any]) -> None:
    # The spec: an unknown templateId is a 404. The emulator has no templates, so every id is unknown;
    # ignoring it would leave the caller believing the template's image and env were applied.
    if "templateId" in body:
        raise EmulatorError(404, "Not Found", f"template {body['templateId']} not found: the local emulator has no "
                                              "templates; give image, env and the other container settings in the body")


def placement(gpu: dict[str, Any], preferred: str) -> str:
    """The card a worker of this gpu selection is placed on: RunPod places workers only on the types of the chosen
    pools less the excluded ones. `preferred` (the emulator's gpu_type) when the selection holds it, else the
    selection's first card in the catalog; `preferred` when the catalog knows no card of the selection."""
    excluded = set(gpu.get("excludedTypes") or ())
    cards = [gid for gid, _, pool, _, _ in GPU_CATALOG if pool in (gpu.get("pools") or ()) and gid not in excluded]
    return preferred if preferred in cards or not cards else cards[0]


def _gpu_selection(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """The gpu block after a create (`current` holds the defaults) or a PATCH (`current` is the endpoint's), by
    REST v2's rules: `pools` and `excludedTypes` are one selection (new pools without exclusions clear them),
    `minCudaVersion` "" clears the floor (reported as null), a non-empty CUDA set beside a floor is a 400, and
    every excluded type must be a card of the chosen pools, leaving at least one (400 otherwise)."""
    gpu = {k: (list(v) if isinstance(v, list) else v) for k, v in current.items()}
    if "pools" in change:
        gpu["pools"] = list(change["pools"])
        gpu.pop("excludedTypes", None)
        if change.get("excludedTypes"):
            gpu["excludedTypes"] = [t.strip() for t in change["excludedTypes"]]
    for key in ("count", "allowedCudaVersions"):
        if key in change:
            gpu[key] = list(change[key]) if key == "allowedCudaVersions" else change[key]
    if "minCudaVersion" in change:
        gpu["minCudaVersion"] = change["minCudaVersion"] or None
    if gpu.get("allowedCudaVersions") and gpu.get("minCudaVersion"):
        raise EmulatorError(400, "Bad Request", f"gpu.allowedCudaVersions {gpu['allowedCudaVersions']} and "
                                                f"gpu.minCudaVersion {gpu['minCudaVersion']!r} are mutually exclusive: "
                                                "send one (clear the other in the same request: [] or \"\")")
    excluded = gpu.get("excludedTypes") or []
    if excluded:
        cards = {gid for gid, _, pool, _, _ in GPU_CATALOG if pool in gpu["pools"]}
        foreign = [t for t in excluded if t not in cards]
        if foreign:
            raise EmulatorError(400, "Bad Request", f"gpu.excludedTypes {foreign} are not GPU types in pools "
                                                    f"{gpu['pools']} (GET /v2/catalog/gpus lists each type's pool)")
        if cards <= set(excluded):
            raise EmulatorError(400, "Bad Request", f"gpu.excludedTypes leave no GPU type in pools {gpu['pools']}: "
                                                    "keep at least one, or choose other pools")
    return gpu


def _idle_timeout_fits(scaling: dict[str, Any], workers: dict[str, Any]) -> None:
    # The spec (EndpointWorkers.idleTimeout): not applicable to a queue endpoint scaling on REQUEST_COUNT,
    # rejected on create/update and omitted from responses.
    if scaling.get("type") == "REQUEST_COUNT" and "idleTimeout" in workers:
        raise EmulatorError(400, "Bad Request", "workers.idleTimeout does not apply to a QUEUE endpoint scaling on "
                                                "REQUEST_COUNT: leave it out (or scale on QUEUE_DELAY)")


def _scaled_workers(workers: dict[str, Any], scaling: dict[str, Any]) -> dict[str, Any]:
    """The workers block as stored and returned: no idleTimeout with REQUEST_COUNT, the default 10 s otherwise."""
    if scaling.get("type") == "REQUEST_COUNT":
        return {k: v for k, v in workers.items() if k != "idleTimeout"}
    return {**workers, "idleTimeout": workers.get("idleTimeout", 10)}


def _check_workers(workers: dict[str, Any]) -> None:
    if workers["min"] > workers["max"]:
        raise EmulatorError(400, "Bad Request", f"workers.min ({workers['min']}) exceeds workers.max "
                                                f"({workers['max']})")


def _flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'workers': {'max': 3}} -> {'workers.max': 3}; env stays one field (it is replaced as a whole)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and key not in ("env",):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
