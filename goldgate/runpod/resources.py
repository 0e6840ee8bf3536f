"""Typed values for RunPod control-plane resources (REST v2): endpoints, releases, workers, GPU types,
registry credentials.

Each `from_wire` reads the vendor's JSON; each `*Config`/`*Patch`/`RegistryCredential` writes a request
body valid against the OpenAPI schema (CreateEndpointRequest / UpdateEndpointRequest /
CreateRegistryRequest)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from goldgate.runpod.errors import RunPodProtocolError

SCALING_TYPES = ("QUEUE_DELAY", "REQUEST_COUNT")
FLASHBOOT_MODES = ("OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT")


def _need(wire: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in wire:
        raise RunPodProtocolError(f"RunPod {what} JSON lacks {key!r}: the API changed or the base URL is wrong")
    return wire[key]


class Clear(enum.Enum):
    """In an `EndpointPatch`, a field set to `CLEAR` is sent as JSON null: RunPod removes its value.

    (None in a patch means "leave alone", as for every other field.)"""

    CLEAR = "clear"


CLEAR = Clear.CLEAR


@dataclass(frozen=True)
class Scaling:
    """QUEUE_DELAY (value = seconds a job may wait before a worker is added) or REQUEST_COUNT."""

    type: str = "QUEUE_DELAY"
    value: float = 4

    def to_wire(self) -> dict[str, Any]:
        if self.type == "QUEUE_DELAY":
            return {"type": "QUEUE_DELAY", "queueDelay": self.value}
        return {"type": "REQUEST_COUNT", "requestCount": int(self.value)}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Scaling:
        kind = wire.get("type", "QUEUE_DELAY")
        value = wire.get("queueDelay") if kind == "QUEUE_DELAY" else wire.get("requestCount")
        return cls(type=kind, value=value if value is not None else 0)


@dataclass(frozen=True)
class EndpointConfig:
    """What goldgate declares about a serverless endpoint (the create body). GPU endpoints only.

    `timeout_ms` is the endpoint's default execution timeout; `idle_timeout_s` how long an idle worker
    lives (not sent with REQUEST_COUNT scaling: RunPod refuses it there). `registry` is the id of a RunPod
    registry credential (`ControlPlaneClient.create_registry`) for pulling a private image; None pulls
    anonymously."""

    name: str
    image: str
    gpu_pools: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    gpu_count: int = 1
    workers_min: int = 0
    workers_max: int = 3
    idle_timeout_s: int = 5
    scaling: Scaling = Scaling()
    timeout_ms: int = 600_000
    flashboot: str = "OFF"
    data_center_ids: tuple[str, ...] = ()
    network_volumes: tuple[str, ...] = ()
    disk_gb: int | None = None
    template_id: str | None = None
    registry: str | None = None

    def __post_init__(self) -> None:
        if self.registry is not None and (not isinstance(self.registry, str) or not self.registry):
            raise ValueError("EndpointConfig.registry must be a registry credential id or None")

    def to_create_body(self) -> dict[str, Any]:
        workers: dict[str, Any] = {"min": self.workers_min, "max": self.workers_max}
        if self.scaling.type != "REQUEST_COUNT":  # RunPod rejects idleTimeout on a queue endpoint scaling on it
            workers["idleTimeout"] = self.idle_timeout_s
        body: dict[str, Any] = {
            "name": self.name, "type": "QUEUE", "image": self.image, "env": dict(self.env),
            "gpu": {"pools": list(self.gpu_pools), "count": self.gpu_count}, "workers": workers,
            "scaling": self.scaling.to_wire(), "timeout": self.timeout_ms, "flashboot": self.flashboot,
        }
        if self.data_center_ids:
            body["dataCenterIds"] = list(self.data_center_ids)
        if self.network_volumes:
            body["networkVolumes"] = list(self.network_volumes)
        if self.disk_gb is not None:
            body["disk"] = self.disk_gb
        if self.template_id is not None:
            body["templateId"] = self.template_id
        if self.registry is not None:
            body["registry"] = self.registry
        return body


@dataclass(frozen=True)
class EndpointPatch:
    """A partial update: only the fields that are not None are sent (PATCH semantics).

    Changing `image`, `env` or `registry`, or where workers run (`gpu_*`, `data_center_ids`, `network_volumes`),
    makes RunPod create a new release that rolls out as workers cycle. `registry` has three states: None leaves it alone, a credential id sets it, `CLEAR` removes
    it (sent as `"registry": null`)."""

    name: str | None = None
    image: str | None = None
    env: Mapping[str, str] | None = None
    gpu_pools: tuple[str, ...] | None = None
    gpu_count: int | None = None
    workers_min: int | None = None
    workers_max: int | None = None
    idle_timeout_s: int | None = None
    scaling: Scaling | None = None
    timeout_ms: int | None = None
    flashboot: str | None = None
    data_center_ids: tuple[str, ...] | None = None
    network_volumes: tuple[str, ...] | None = None
    disk_gb: int | None = None
    registry: str | Clear | None = None

    def __post_init__(self) -> None:
        if self.registry is not None and self.registry is not CLEAR and (
                not isinstance(self.registry, str) or not self.registry):
            raise ValueError("EndpointPatch.registry must be a registry credential id, CLEAR (remove it) or None "
                             "(leave it alone)")

    def to_update_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        simple = {"name": self.name, "image": self.image, "timeout": self.timeout_ms,
                  "flashboot": self.flashboot, "disk": self.disk_gb}
        body.update({k: v for k, v in simple.items() if v is not None})
        if self.env is not None:
            body["env"] = dict(self.env)
        gpu = {k: v for k, v in (("pools", list(self.gpu_pools) if self.gpu_pools is not None else None),
                                 ("count", self.gpu_count)) if v is not None}
        if gpu:
            body["gpu"] = gpu
        workers = {k: v for k, v in (("min", self.workers_min), ("max", self.workers_max),
                                     ("idleTimeout", self.idle_timeout_s)) if v is not None}
        if workers:
            body["workers"] = workers
        if self.scaling is not None:
            body["scaling"] = self.scaling.to_wire()
        if self.data_center_ids is not None:
            body["dataCenterIds"] = list(self.data_center_ids)
        if self.network_volumes is not None:
            body["networkVolumes"] = list(self.network_volumes)
        if self.registry is CLEAR:
            body["registry"] = None
        elif self.registry is not None:
            body["registry"] = self.registry
        return body

    def is_empty(self) -> bool:
        return not self.to_update_body()


@dataclass(frozen=True)
class Endpoint:
    """A serverless endpoint as RunPod reports it. `raw` is the full wire object (for outputs and debugging)."""

    id: str
    name: str
    image: str | None
    env: Mapping[str, str]
    gpu_pools: tuple[str, ...]
    gpu_count: int
    workers_min: int
    workers_max: int
    idle_timeout_s: int | None
    scaling: Scaling
    timeout_ms: int
    flashboot: str
    data_center_ids: tuple[str, ...]
    network_volumes: tuple[str, ...]
    created_at: str
    type: str = "QUEUE"
    registry: str | None = None
    request_urls: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Endpoint:
        workers = _need(wire, "workers", "endpoint") or {}
        gpu = wire.get("gpu") or {}
        return cls(
            id=str(_need(wire, "id", "endpoint")), name=str(_need(wire, "name", "endpoint")),
            image=wire.get("image"), env=dict(wire.get("env") or {}),
            gpu_pools=tuple(gpu.get("pools") or ()), gpu_count=int(gpu.get("count") or 0),
            workers_min=int(workers.get("min", 0)), workers_max=int(workers.get("max", 0)),
            idle_timeout_s=workers.get("idleTimeout"),
            scaling=Scaling.from_wire(_need(wire, "scaling", "endpoint")),
            timeout_ms=int(wire.get("timeout") or 0), flashboot=str(wire.get("flashboot") or "OFF"),
            data_center_ids=tuple(wire.get("dataCenterIds") or ()),
            network_volumes=tuple(wire.get("networkVolumes") or ()),
            created_at=str(wire.get("createdAt") or ""), type=str(wire.get("type") or "QUEUE"),
            registry=wire.get("registry") or None,
            request_urls=dict(wire.get("requestUrls") or {}), raw=dict(wire))


@dataclass(frozen=True)
class DiffEntry:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Release:
    """One endpoint release: a versioned snapshot of its configuration and what changed."""

    id: str
    version: int | None
    source: str
    created_at: str
    worker_count: int
    diff: tuple[DiffEntry, ...]
    build_id: str | None = None

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Release:
        return cls(id=str(_need(wire, "id", "release")), version=wire.get("version"),
                   source=str(wire.get("source") or "MANUAL"), created_at=str(wire.get("createdAt") or ""),
                   worker_count=int(wire.get("workerCount") or 0), build_id=wire.get("buildId"),
                   diff=tuple(DiffEntry(str(d.get("field")), d.get("old"), d.get("new"))
                              for d in wire.get("diff") or ()))


@dataclass(frozen=True)
class Rollout:
    """How far the latest release has reached: percentOnLatest of the workers run it."""

    in_progress: bool
    workers_on_latest: int
    workers_total: int
    percent_on_latest: int


@dataclass(frozen=True)
class ReleaseHistory:
    """GET /v2/serverless/{id}/releases: newest release first, plus the rollout summary."""

    endpoint_version: int | None
    rollout: Rollout
    releases: tuple[Release, ...]

    @property
    def latest(self) -> Release | None:
        return self.releases[0] if self.releases else None

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> ReleaseHistory:
        r = _need(wire, "rollout", "release list")
        return cls(endpoint_version=wire.get("endpointVersion"),
                   rollout=Rollout(bool(r.get("inProgress")), int(r.get("workersOnLatest") or 0),
                                   int(r.get("workersTotal") or 0), int(r.get("percentOnLatest") or 0)),
                   releases=tuple(Release.from_wire(x) for x in _need(wire, "releases", "release list")))


@dataclass(frozen=True)
class Worker:
    """One active worker. `is_stale` is true when it runs an older release than the endpoint's latest."""

    id: str
    status: str
    is_stale: bool
    version: int | None
    gpu_count: int
    image: str | None = None
    uptime_s: int | None = None
    gpu_type_id: str | None = None
    data_center_id: str | None = None
    started_at: str | None = None

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Worker:
        return cls(id=str(_need(wire, "id", "worker")), status=str(_need(wire, "status", "worker")),
                   is_stale=bool(wire.get("isStale")), version=wire.get("version"),
                   gpu_count=int(wire.get("gpuCount") or 0), image=wire.get("image"),
                   uptime_s=wire.get("uptimeSeconds"), gpu_type_id=wire.get("gpuTypeId"),
                   data_center_id=wire.get("dataCenterId"), started_at=wire.get("startedAt"))


@dataclass(frozen=True)
class WorkerList:
    """GET /v2/serverless/{id}/workers: the active workers and counts by status."""

    endpoint_version: int | None
    workers: tuple[Worker, ...]
    summary: Mapping[str, int]

    @property
    def stale(self) -> tuple[Worker, ...]:
        return tuple(w for w in self.workers if w.is_stale)

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> WorkerList:
        return cls(endpoint_version=wire.get("endpointVersion"),
                   workers=tuple(Worker.from_wire(w) for w in _need(wire, "workers", "worker list")),
                   summary=dict(wire.get("summary") or {}))


@dataclass(frozen=True)
class GpuType:
    """A GPU type from the catalog. `serverless_price_per_hour` is USD per GPU-hour (None if not sold)."""

    id: str
    name: str
    pool: str | None
    memory_gb: int
    serverless_price_per_hour: float | None

    @property
    def serverless_price_per_second(self) -> float | None:
        p = self.serverless_price_per_hour
        return None if p is None else p / 3600.0

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> GpuType:
        price = wire.get("price") or {}
        return cls(id=str(_need(wire, "id", "GPU type")), name=str(wire.get("name") or ""),
                   pool=wire.get("pool"), memory_gb=int(wire.get("memory") or 0),
                   serverless_price_per_hour=price.get("serverless"))


@dataclass(frozen=True)
class RegistryCredential:
    """A private-registry login RunPod pulls images with (the POST /v2/registries body).

    Write-only: RunPod never returns the username or password, and neither appears in this value's
    repr or in any error the client raises."""

    name: str
    username: str = field(repr=False)
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        for key in ("name", "username", "password"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value:
                # Never echo the value: it may be (part of) a secret.
                raise ValueError(f"RegistryCredential.{key} must be a non-empty string")

    def to_create_body(self) -> dict[str, Any]:
        return {"name": self.name, "username": self.username, "password": self.password}

    def secrets(self) -> tuple[str, ...]:
        """The values an error message must never show (a short username is too common a string to scrub)."""
        return (self.password, self.username) if len(self.username) >= 4 else (self.password,)


@dataclass(frozen=True)
class Registry:
    """A registry credential as RunPod reports it: its id (what an endpoint's `registry` names) and name."""

    id: str
    name: str

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Registry:
        return cls(id=str(_need(wire, "id", "registry")), name=str(_need(wire, "name", "registry")))
