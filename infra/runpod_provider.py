"""The RunPod serverless endpoint as a Pulumi dynamic resource, a thin layer over goldgate.runpod.

create/read/diff/update/delete map onto REST v2 (`POST/GET/PATCH/DELETE /v2/serverless`).
Almost nothing forces a replacement: image, env, the registry credential, GPU pools and count, data centers
and volumes are PATCHed in place (a new release rolls out as workers are replaced, the endpoint id stays), as
are workers, scaling, timeouts and flashboot (applied at once, no release). `registry` None means "pull anonymously": a credential attached outside
Pulumi is drift, and the next update clears it (`"registry": null`). Only a different endpoint type (which
RunPod cannot change) means a new endpoint. A new control-plane base URL is an update too: the account is the
API key's, and a moved API still serves the same endpoint; the update refuses a base where the endpoint does
not exist (moving to another account is a deliberate `pulumi up --replace`). `read` reports drift against what was declared, including RunPod's idle
scale-down of max workers (to 2 after 3 quiet days, to 0 after 7), so `pulumi up --refresh` restores it.
A create whose answer is lost (no response, a 5xx, an unreadable 2xx) adopts the endpoint it made, if RunPod made one (`create_once`).
A refresh or a delete answered 404 forgets the endpoint only once RunPod lists endpoints without it (`confirm_gone`).
`pulumi destroy` first runs the stack's drain check (infra/runpod_drain_provider.py): it stops while jobs are in flight.

Pulumi pickles the provider: it holds no state, and builds its client from the inputs each call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import pulumi
import pulumi.dynamic as dyn
from pulumi.output import Unknown

from goldgate.runpod import (
    CLEAR,
    ControlPlaneClient,
    Endpoint,
    EndpointConfig,
    EndpointPatch,
    RunPodError,
    RunPodNotFound,
    RunPodProtocolError,
    RunPodUnavailable,
    Scaling,
)
from goldgate.spec import REGISTRY_ID, is_digest_ref

# The endpoint fields goldgate declares (input name -> how to read it off an Endpoint).
DECLARED_FIELDS: dict[str, Any] = {
    "endpoint_type": lambda ep: ep.type,
    "name": lambda ep: ep.name,
    "image": lambda ep: ep.image,
    "env": lambda ep: dict(ep.env),
    "gpu_pools": lambda ep: list(ep.gpu_pools),
    "gpu_count": lambda ep: ep.gpu_count,
    "workers_min": lambda ep: ep.workers_min,
    "workers_max": lambda ep: ep.workers_max,
    "idle_timeout_s": lambda ep: ep.idle_timeout_s,
    "scaler_type": lambda ep: ep.scaling.type,
    "scaler_value": lambda ep: ep.scaling.value,
    "execution_timeout_ms": lambda ep: ep.timeout_ms,
    "flashboot": lambda ep: ep.flashboot,
    "data_center_ids": lambda ep: list(ep.data_center_ids),
    "network_volume_ids": lambda ep: list(ep.network_volumes),
    "registry": lambda ep: ep.registry,
}
# Pulumi drops None inputs, so an absent field here still declares "none" (pull anonymously).
ABSENT_MEANS_NONE = ("registry",)
# RunPod refuses to change an endpoint's routing type (UpdateEndpointRequest has no `type`).
REPLACE_FIELDS = ("endpoint_type",)
# Order carries no meaning in these lists; RunPod may answer them in its own order.
UNORDERED_FIELDS = ("gpu_pools", "data_center_ids", "network_volume_ids")
# Pulumi carries every number as a double, so a deployed provider receives workers_max 3.0: compare these as ints.
WHOLE_FIELDS = ("gpu_count", "workers_min", "workers_max", "idle_timeout_s", "execution_timeout_ms")
SECRET_OUTPUTS = ["api_key", "env", "declared"]
# What a delete that cannot prove its resource gone asks for (a destroy, a replacement or a removal ran it).
RUN_AGAIN = "run the same `pulumi` command"
T = TypeVar("T")


@dataclass(frozen=True)
class Drift:
    """One declared field the live endpoint no longer matches. For env only the key names are kept."""

    field: str
    declared: Any
    actual: Any

    def to_output(self) -> dict[str, Any]:
        return asdict(self)


def _norm(field: str, value: Any) -> Any:
    if value is None or isinstance(value, Unknown):
        # In a preview, an input computed from a resource being replaced (the R2 token behind the worker's env)
        # is unknown: a change to show, never one to normalise.
        return value
    if field in UNORDERED_FIELDS:
        return sorted(value)
    if field == "scaler_value":
        return float(value)
    if field in WHOLE_FIELDS and isinstance(value, float) and value.is_integer():
        return int(value)
    if field == "env":
        return {str(k): str(v) for k, v in dict(value).items()}
    return value


def changed_fields(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """The declared fields (and api_base/api_key) whose values differ between two property bags."""
    fields = [*DECLARED_FIELDS, "api_base", "api_key"]
    return [f for f in fields if _norm(f, olds.get(f)) != _norm(f, news.get(f))]


def endpoint_drift(declared: Mapping[str, Any], endpoint: Endpoint) -> list[Drift]:
    """Where the live endpoint differs from what was declared (env values are never reported)."""
    drift = []
    for field, read in DECLARED_FIELDS.items():
        if field not in declared:
            continue
        want, have = _norm(field, declared[field]), _norm(field, read(endpoint))
        if want == have:
            continue
        if field == "env":
            keys = sorted(k for k in set(want or {}) | set(have or {}) if (want or {}).get(k) != (have or {}).get(k))
            drift.append(Drift("env", keys, "changed"))
        else:
            drift.append(Drift(field, want, have))
    return drift


def idle_scaled_down(declared: Mapping[str, Any], endpoint: Endpoint) -> bool:
    """RunPod's idle scale-down: max workers lowered to 2 (3 quiet days) or 0 (7) below what we declared."""
    want = _norm("workers_max", declared.get("workers_max"))
    return isinstance(want, int) and endpoint.workers_max < want and endpoint.workers_max <= 2


def config_of(props: Mapping[str, Any]) -> EndpointConfig:
    """The create body from the resource inputs."""
    return EndpointConfig(
        name=props["name"], image=props["image"], env=dict(props.get("env") or {}),
        gpu_pools=tuple(props["gpu_pools"]), gpu_count=int(props.get("gpu_count", 1)),
        workers_min=int(props.get("workers_min", 0)), workers_max=int(props.get("workers_max", 3)),
        idle_timeout_s=int(props.get("idle_timeout_s", 5)),
        scaling=Scaling(props.get("scaler_type", "QUEUE_DELAY"), props.get("scaler_value", 4)),
        timeout_ms=int(props.get("execution_timeout_ms", 600_000)), flashboot=props.get("flashboot", "OFF"),
        data_center_ids=tuple(props.get("data_center_ids") or ()),
        network_volumes=tuple(props.get("network_volume_ids") or ()),
        registry=props.get("registry") or None)


def patch_of(fields: list[str], news: Mapping[str, Any]) -> EndpointPatch:
    """A PATCH carrying only the changed fields (grouped objects are resent whole: gpu, workers, scaling)."""
    c = config_of(news)
    touched = set(fields)
    gpu = bool(touched & {"gpu_pools", "gpu_count"})
    workers = bool(touched & {"workers_min", "workers_max", "idle_timeout_s"})
    return EndpointPatch(
        name=c.name if "name" in touched else None,
        image=c.image if "image" in touched else None,
        env=c.env if "env" in touched else None,  # PATCH replaces env wholesale: send all of it
        gpu_pools=c.gpu_pools if gpu else None, gpu_count=c.gpu_count if gpu else None,
        workers_min=c.workers_min if workers else None, workers_max=c.workers_max if workers else None,
        idle_timeout_s=c.idle_timeout_s if workers else None,
        scaling=c.scaling if touched & {"scaler_type", "scaler_value"} else None,
        timeout_ms=c.timeout_ms if "execution_timeout_ms" in touched else None,
        flashboot=c.flashboot if "flashboot" in touched else None,
        data_center_ids=c.data_center_ids if "data_center_ids" in touched else None,
        network_volumes=c.network_volumes if "network_volume_ids" in touched else None,
        registry=(c.registry or CLEAR) if "registry" in touched else None)


class RunPodEndpointProvider(dyn.ResourceProvider):
    """CRUD of one serverless endpoint over goldgate.runpod.ControlPlaneClient."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        failures = []
        image = news.get("image")
        if isinstance(image, str) and not is_digest_ref(image):
            failures.append(dyn.CheckFailure("image", f"{image!r} is not pinned by digest (repo@sha256:<64 hex>)"))
        if not news.get("gpu_pools"):
            failures.append(dyn.CheckFailure("gpu_pools", "name at least one RunPod GPU pool (e.g. ADA_24)"))
        if news.get("scaler_type") == "REQUEST_COUNT":
            # RunPod rejects idleTimeout with REQUEST_COUNT on queue endpoints and leaves it out of its answers,
            # so this resource's idle timeout (sent on updates, compared on refresh) could never settle.
            failures.append(dyn.CheckFailure("scaler_type", "REQUEST_COUNT scaling cannot carry an idle timeout on "
                                             "a queue endpoint: use QUEUE_DELAY (endpoint.scaler_type)"))
        registry = news.get("registry")
        if isinstance(registry, str) and not REGISTRY_ID.match(registry):
            failures.append(dyn.CheckFailure("registry", f"{registry!r} is not a RunPod registry credential id "
                                             "(endpoint.registry_credential_id)"))
        lo, hi = _norm("workers_min", news.get("workers_min")), _norm("workers_max", news.get("workers_max"))
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            failures.append(dyn.CheckFailure("workers_min", f"workers_min {lo} exceeds workers_max {hi}"))
        return dyn.CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        config = config_of(props)
        with _client(props) as rp:
            endpoint = create_once(lambda: rp.create_endpoint(config),
                                   lambda: [(e.id, e) for e in rp.list_endpoints() if e.name == config.name],
                                   "endpoint", config.name, props)
        return dyn.CreateResult(id_=endpoint.id, outs=_outs(props, endpoint))

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        with _client(props) as rp:
            endpoint = rp.find_endpoint(id_)
            if endpoint is None:  # deleted outside Pulumi: an empty id tells the engine it is gone
                confirm_gone(lambda: [e.id for e in rp.list_endpoints()], id_, "endpoint", props)
                return dyn.ReadResult(id_="", outs={})
        declared = {**dict.fromkeys(ABSENT_MEANS_NONE), **(props.get("declared") or declared_of(props))}
        outs = dict(props)
        outs.update({f: read(endpoint) for f, read in DECLARED_FIELDS.items()})
        outs.update(_observed(declared, endpoint))
        return dyn.ReadResult(id_=id_, outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        changed = changed_fields(olds, news)
        replaces = [f for f in changed if f in REPLACE_FIELDS]
        return dyn.DiffResult(changes=bool(changed), replaces=replaces,
                              stables=["endpoint_id"] if not replaces else [], delete_before_replace=False)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        fields = changed_fields(olds, news)
        patch = patch_of(fields, news)
        with _client(news) as rp:
            try:
                endpoint = rp.update_endpoint(id_, patch)  # an empty patch (only the key or base changed) just reads
            except RunPodNotFound:
                if "api_base" not in fields:
                    raise
                raise RunPodError(f"endpoint {id_} is not at {news.get('api_base')} (it was at {olds.get('api_base')}): "
                                  "if that is the same RunPod account, fix goldgate:spec.cloud.runpod_api_base; to "
                                  "move the endpoint to another account, replace it deliberately (`pulumi up "
                                  "--replace <its urn>`; a new id, URL and queue)", status=404) from None
        return dyn.UpdateResult(outs=_outs(news, endpoint))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with _client(props) as rp:
            if not rp.delete_endpoint(id_, missing_ok=True):  # a 404: gone already, or an API that 404s everything
                confirm_gone(lambda: [e.id for e in rp.list_endpoints()], id_, "endpoint", props, then=RUN_AGAIN)


def control_client(props: Mapping[str, Any], what: str, declare: str) -> ControlPlaneClient:
    """The client a dynamic provider builds from its own inputs (it holds no state between calls)."""
    missing = [k for k in ("api_base", "api_key") if not props.get(k)]
    if missing:  # e.g. `pulumi import` of a resource goldgate never declared
        raise RunPodError(f"the {what}'s {' and '.join(missing)} are unknown: declare it in the program "
                          f"({declare}) rather than importing it bare")
    return ControlPlaneClient(props["api_key"], base_url=props["api_base"])


def _client(props: Mapping[str, Any]) -> ControlPlaneClient:
    return control_client(props, "endpoint", "infra/components/gpu.py")


def create_once(create: Callable[[], T], named: Callable[[], list[tuple[str, T]]], what: str, name: str,
                props: Mapping[str, Any]) -> T:
    """`create()` once. When its answer is lost (no response, a 5xx, or a 2xx this client cannot read, after which
    RunPod may have acted anyway) the one resource named `name` that was not there before is what it created: return
    that rather than fail, or Pulumi records nothing and the next `pulumi up` makes a second one, leaving the first
    (an endpoint keeps its workers_min GPU workers, billed) where nothing would delete it. `named()` lists
    (id, resource) by that name."""
    before = {rid for rid, _ in named()}
    try:
        return create()
    except (RunPodUnavailable, RunPodProtocolError) as exc:
        try:
            appeared = [found for rid, found in named() if rid not in before]
        except RunPodError:
            appeared = None
        if appeared == []:  # nothing was created: the failure stands as it was
            raise
        if appeared is not None and len(appeared) == 1:
            return appeared[0]
        raise RunPodError(f"{exc}\nThe {what} {name!r} may have been created anyway and could not be identified: "
                          f"before the next `pulumi up`, list the {what}s at {props.get('api_base')} and delete "
                          f"any {what} named {name!r} that the stack's state does not hold", status=exc.status) from None


def confirm_gone(list_ids: Callable[[], list[str]], id_: str, what: str, props: Mapping[str, Any],
                 then: str = "refresh") -> None:
    """A 404 for one resource proves it gone only if the control plane still lists its kind without it: a moved or
    retired API answers 404 to every path, and a refresh that forgot the resource would let the next `pulumi up`
    create a second one (a new id, a new URL, an empty queue), as a destroy that forgot it would leave it running
    (an endpoint keeps its workers_min GPU workers, billed) where no Pulumi stack knows of it. `then` is what the
    operator runs again."""
    try:
        ids = list_ids()
    except RunPodError as exc:
        raise RunPodError(f"the {what} {id_} answered 404, but listing {what}s at {props.get('api_base')} failed too "
                          f"({exc}): not reporting it gone; check the control plane (goldgate:spec.cloud."
                          f"runpod_api_base) and {then} again", status=exc.status) from None
    if id_ in ids:
        raise RunPodError(f"the {what} {id_} answered 404 but is still listed: not reporting it gone; {then} again")


def _observed(declared: Mapping[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    return {"endpoint_id": endpoint.id, "created_at": endpoint.created_at,
            "drift": [d.to_output() for d in endpoint_drift(declared, endpoint)],
            "idle_scaled_down": idle_scaled_down(declared, endpoint)}


def declared_of(props: Mapping[str, Any]) -> dict[str, Any]:
    """What the inputs declare, field by field (an absent `registry` declares none)."""
    return {f: props.get(f) for f in DECLARED_FIELDS if f in props or f in ABSENT_MEANS_NONE}


def _outs(props: Mapping[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    declared = declared_of(props)
    outs = dict(props)
    outs["declared"] = declared
    outs.update(_observed(declared, endpoint))
    return outs


class RunPodEndpoint(dyn.Resource, module="runpod", name="ServerlessEndpoint"):
    """A RunPod serverless endpoint (queue-based, GPU) declared by goldgate."""

    endpoint_id: pulumi.Output[str]
    created_at: pulumi.Output[str]
    drift: pulumi.Output[list]
    idle_scaled_down: pulumi.Output[bool]

    def __init__(self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        bag = dict(props)
        bag.setdefault("endpoint_type", "QUEUE")
        bag["api_key"] = pulumi.Output.secret(bag["api_key"])
        bag.update({"endpoint_id": None, "created_at": None, "drift": None, "idle_scaled_down": None,
                    "declared": None})
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS))
        super().__init__(RunPodEndpointProvider(), name, bag, opts)
