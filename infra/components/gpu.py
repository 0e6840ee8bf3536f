"""GpuEndpoint: the stack's RunPod serverless endpoint, running the digest-pinned worker image, and the
registry credential RunPod pulls it with when goldgate manages one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from goldgate.errors import SpecError
from goldgate.spec import StackSpec
from infra.names import StackNames
from infra.runpod_drain_provider import DrainCheck
from infra.runpod_provider import RunPodEndpoint
from infra.runpod_registry_provider import RunPodRegistryCredential


def control_plane_root(api_base: str) -> str:
    """goldgate.runpod wants the server root (paths start /v2/...); accept a base that already ends in /v2."""
    base = api_base.rstrip("/")
    return base.removesuffix("/v2")


@dataclass(frozen=True)
class RegistryLogin:
    """The private registry's username and password (Pulumi secrets) for a managed credential."""

    username: pulumi.Input[str]
    password: pulumi.Input[str]


@dataclass(frozen=True)
class GpuEndpointArgs:
    spec: StackSpec
    names: StackNames
    runpod_api_key: pulumi.Input[str]
    r2_endpoint_url: str
    r2_bucket: pulumi.Input[str]
    r2_access_key_id: pulumi.Input[str]
    r2_secret_access_key: pulumi.Input[str]
    registry_login: RegistryLogin | None = None  # required when endpoint.manage_registry_credential


def worker_env(args: GpuEndpointArgs) -> pulumi.Output[dict]:
    """The worker's environment (docs/INTERFACES.md): the stack's own env plus what goldgate sets; secret."""
    spec = args.spec
    fixed = {**spec.endpoint.worker_timeouts(), **dict(spec.endpoint.env), "WORKFLOW_VERSION": spec.workflow_version,
             "WORKER_IMAGE_TAG": spec.image, "STACK": spec.name, "GPU_TYPE": spec.endpoint.cost_gpu_type,
             "R2_ENDPOINT_URL": args.r2_endpoint_url}
    env = pulumi.Output.all(args.r2_bucket, args.r2_access_key_id, args.r2_secret_access_key).apply(
        lambda v: {**fixed, "R2_BUCKET": v[0], "R2_ACCESS_KEY_ID": v[1], "R2_SECRET_ACCESS_KEY": v[2]})
    return pulumi.Output.secret(env)


class GpuEndpoint(pulumi.ComponentResource):
    """A queue-based GPU endpoint; image and env changes are in-place releases (same endpoint id)."""

    endpoint_id: pulumi.Output[str]
    endpoint_base: pulumi.Output[str]
    registry_credential_id: pulumi.Input[str] | None
    registry_credential: RunPodRegistryCredential | None
    drain_check: DrainCheck | None

    def __init__(self, name: str, args: GpuEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("goldgate:gpu:Endpoint", name, None, opts)
        spec, ep = args.spec, args.spec.endpoint
        assert spec.cloud is not None and spec.image is not None  # from_pulumi_config guarantees both
        api_base = control_plane_root(spec.cloud.runpod_api_base)
        self.registry_credential = None
        self.registry_credential_id = ep.registry_credential_id
        self.drain_check = None
        self._names, self._api_key, self._api_base = args.names, args.runpod_api_key, api_base
        if ep.manage_registry_credential:
            if args.registry_login is None:
                raise SpecError(f"stack {spec.name}: endpoint.manage_registry_credential needs the registry login: "
                                "set goldgate:registryUsername and goldgate:registryPassword (docs/CLOUD.md)")
            # Not protected, even in PROD: rotating the password replaces it (new one first, then the old goes).
            self.registry_credential = RunPodRegistryCredential(args.names.logical("registry"), {
                "api_base": api_base, "api_key": args.runpod_api_key, "name": args.names.registry_credential,
                "username": args.registry_login.username, "password": args.registry_login.password,
            }, opts=pulumi.ResourceOptions(parent=self))
            self.registry_credential_id = self.registry_credential.registry_id
        props = {
            "api_base": api_base, "api_key": args.runpod_api_key,
            "endpoint_type": "QUEUE", "name": args.names.endpoint, "image": spec.image, "env": worker_env(args),
            "gpu_pools": list(ep.gpu_pools), "gpu_count": ep.gpu_count,
            "workers_min": ep.workers_min, "workers_max": ep.workers_max, "idle_timeout_s": ep.idle_timeout_s,
            "scaler_type": ep.scaler_type, "scaler_value": ep.scaler_value,
            "execution_timeout_ms": ep.execution_timeout_ms, "flashboot": "FLASHBOOT" if ep.flashboot else "OFF",
            "data_center_ids": list(ep.data_center_ids),
            "network_volume_ids": [ep.network_volume_id] if ep.network_volume_id else [],
            "registry": self.registry_credential_id,
        }
        # PROD's endpoint id is what the API Worker calls: a deleted endpoint would strand every queued job.
        self.endpoint = RunPodEndpoint(args.names.logical("endpoint"), props,
                                       opts=pulumi.ResourceOptions(parent=self, protect=spec.is_prod))
        self.endpoint_id = self.endpoint.endpoint_id
        base = spec.cloud.runpod_endpoint_base.rstrip("/")
        self.endpoint_base = self.endpoint_id.apply(lambda i: f"{base}/{i}")
        self.register_outputs({"endpoint_id": self.endpoint_id, "endpoint_base": self.endpoint_base,
                               "registry_credential_id": self.registry_credential_id})

    def stop_destroy_while_jobs_run(self, rest_of_stack: Sequence[pulumi.Resource]) -> DrainCheck:
        """Declare, last, the check that `pulumi destroy` runs first: it depends on this endpoint and on
        `rest_of_stack` (components stand for all their resources), so nothing is deleted while jobs are in flight."""
        mine: list[pulumi.Resource] = [self.endpoint]
        if self.registry_credential is not None:
            mine.append(self.registry_credential)
        self.drain_check = DrainCheck(self._names.logical("drain-check"), stack=self._names.stack,
                                      endpoint_base=self.endpoint_base, api_key=self._api_key,
                                      api_base=self._api_base, endpoint_id=self.endpoint_id,
                                      opts=pulumi.ResourceOptions(parent=self, depends_on=[*mine, *rest_of_stack]))
        return self.drain_check
