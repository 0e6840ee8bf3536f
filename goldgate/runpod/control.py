"""RunPod REST v2 control-plane client: serverless endpoints, their releases and workers, registry
credentials, the GPU catalog.

Usage::

    from goldgate.runpod import CLEAR, ControlPlaneClient, EndpointConfig, EndpointPatch, RegistryCredential

    with ControlPlaneClient(api_key) as rp:          # base_url defaults to https://api.runpod.io
        ep = rp.create_endpoint(EndpointConfig(name="goldgate-staging", image="repo@sha256:...",
                                               gpu_pools=("ADA_24",), workers_max=2))
        ep = rp.get_endpoint(ep.id)
        ep = rp.update_endpoint(ep.id, EndpointPatch(image="repo@sha256:..."))   # new release
        history = rp.list_releases(ep.id)      # history.rollout.percent_on_latest, .in_progress
        workers = rp.list_workers(ep.id)       # workers.stale -> workers still on an older release
        reg = rp.create_registry(RegistryCredential("goldgate-prod-registry", username, password))
        rp.update_endpoint(ep.id, EndpointPatch(registry=reg.id))    # pull the private image with it
        rp.update_endpoint(ep.id, EndpointPatch(registry=CLEAR))     # ... or stop using one
        rp.delete_registry(reg.id)             # RunPod never returns the username or password
        rp.delete_endpoint(ep.id)              # idempotent: a missing endpoint is not an error

Paths follow the OpenAPI spec (`/v2/serverless`, ...). `base_url` is the server root (the spec's
`servers` entry, https://api.runpod.io); a base ending in `/v2` (https://rest.runpod.io/v2, or the
emulator's `api_base`) is accepted too, so a local emulator is just another base URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from goldgate.runpod.errors import RunPodNotFound, RunPodProtocolError
from goldgate.runpod.resources import (
    Endpoint,
    EndpointConfig,
    EndpointPatch,
    GpuType,
    Registry,
    RegistryCredential,
    ReleaseHistory,
    WorkerList,
)
from goldgate.runpod.transport import CALL_DEADLINE_S, ClientBase, RetryPolicy, T, Transport

DEFAULT_CONTROL_BASE = "https://api.runpod.io"


class ControlPlaneClient(ClientBase):
    """Typed wrapper over REST v2. Every method raises a `RunPodError` subclass on failure."""

    def __init__(self, api_key: str, base_url: str = DEFAULT_CONTROL_BASE, *, retry: RetryPolicy | None = None,
                 timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None,
                 event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
                 deadline_s: float = CALL_DEADLINE_S) -> None:
        root = base_url.rstrip("/")
        root = root.removesuffix("/v2")
        self._http = Transport(root, api_key, what="RunPod control plane", retry=retry, timeout_s=timeout_s,
                               transport=transport, event_hooks=event_hooks, deadline_s=deadline_s)

    # endpoints

    def create_endpoint(self, config: EndpointConfig) -> Endpoint:
        return self._object("POST", "/v2/serverless", Endpoint.from_wire, json=config.to_create_body())

    def get_endpoint(self, endpoint_id: str) -> Endpoint:
        return self._object("GET", f"/v2/serverless/{_seg(endpoint_id)}", Endpoint.from_wire)

    def find_endpoint(self, endpoint_id: str) -> Endpoint | None:
        """Like get_endpoint, but None when it does not exist (for providers' read/refresh)."""
        try:
            return self.get_endpoint(endpoint_id)
        except RunPodNotFound:
            return None

    def list_endpoints(self) -> tuple[Endpoint, ...]:
        return self._object("GET", "/v2/serverless", _items("endpoints", Endpoint.from_wire))

    def update_endpoint(self, endpoint_id: str, patch: EndpointPatch) -> Endpoint:
        """PATCH only the fields set in `patch`; an empty patch just reads the endpoint."""
        if patch.is_empty():
            return self.get_endpoint(endpoint_id)
        return self._object("PATCH", f"/v2/serverless/{_seg(endpoint_id)}", Endpoint.from_wire,
                            json=patch.to_update_body())

    def delete_endpoint(self, endpoint_id: str, *, missing_ok: bool = True) -> bool:
        """Delete; True if it was deleted, False if it was already gone (and `missing_ok`)."""
        try:
            self._http.request("DELETE", f"/v2/serverless/{_seg(endpoint_id)}")
        except RunPodNotFound:
            if missing_ok:
                return False
            raise
        return True

    # releases and workers

    def list_releases(self, endpoint_id: str) -> ReleaseHistory:
        return self._object("GET", f"/v2/serverless/{_seg(endpoint_id)}/releases", ReleaseHistory.from_wire)

    def list_workers(self, endpoint_id: str) -> WorkerList:
        return self._object("GET", f"/v2/serverless/{_seg(endpoint_id)}/workers", WorkerList.from_wire)

    # registry credentials (write-only: only id and name ever come back)

    def create_registry(self, credential: RegistryCredential) -> Registry:
        """Store a private-registry login; errors never show its username or password."""
        return self._object("POST", "/v2/registries", Registry.from_wire, json=credential.to_create_body(),
                            redact=credential.secrets())

    def get_registry(self, registry_id: str) -> Registry:
        return self._object("GET", f"/v2/registries/{_seg(registry_id, 'registry id')}", Registry.from_wire)

    def find_registry(self, registry_id: str) -> Registry | None:
        """Like get_registry, but None when it does not exist (for providers' read/refresh)."""
        try:
            return self.get_registry(registry_id)
        except RunPodNotFound:
            return None

    def list_registries(self) -> tuple[Registry, ...]:
        return self._object("GET", "/v2/registries", _items("registries", Registry.from_wire))

    def delete_registry(self, registry_id: str, *, missing_ok: bool = True) -> bool:
        """Delete; True if it was deleted, False if it was already gone (and `missing_ok`).

        RunPod refuses (RunPodRejected, 400) while a pod pulls with it; point endpoints elsewhere first."""
        try:
            self._http.request("DELETE", f"/v2/registries/{_seg(registry_id, 'registry id')}")
        except RunPodNotFound:
            if missing_ok:
                return False
            raise
        return True

    # catalog

    def list_gpu_types(self) -> tuple[GpuType, ...]:
        return self._object("GET", "/v2/catalog/gpus",
                            lambda body: tuple(GpuType.from_wire(g) for g in body.get("gpus") or ()))

    def _object(self, method: str, path: str, parse: Callable[[dict[str, Any]], T], *, json: Any = None,
                redact: tuple[str, ...] = ()) -> T:
        """`parse` the JSON object RunPod answers with (anything else is a RunPodProtocolError)."""

        def read(body: Any) -> T:
            if not isinstance(body, dict):
                raise RunPodProtocolError(f"answered {type(body).__name__}, not a JSON object: the API changed or "
                                          "the base URL is wrong")
            return parse(body)

        return self._read(method, path, read, json=json, redact=redact)


def _items(key: str, parse: Callable[[Any], T]) -> Callable[[dict[str, Any]], tuple[T, ...]]:
    """A list answer ({"endpoints": [...]}) -> a tuple of values."""

    def read(body: dict[str, Any]) -> tuple[T, ...]:
        items = body.get(key)
        if not isinstance(items, list):
            raise RunPodProtocolError(f"the answer lacks the {key!r} list: the API changed or the base URL is wrong")
        return tuple(parse(item) for item in items)

    return read


def _seg(value: str, what: str = "endpoint id") -> str:
    """One path segment; an id with '/' or '..' must not address another resource."""
    article = "an" if what[0] in "aeiou" else "a"
    if not value or not isinstance(value, str):
        raise ValueError(f"{article} {what} is required (got an empty value)")
    if value in (".", ".."):
        # quote() leaves dots alone and httpx resolves them: /v2/serverless/.. would be /v2.
        raise ValueError(f"{value!r} is not {article} {what}")
    return quote(value, safe="")
