"""A local stack's RunPod: the emulator configured from the StackSpec, and its one endpoint.

The stack host talks to the emulator through the same typed REST v2 client the cloud uses, so a
local deploy is exactly a cloud deploy's image PATCH.
"""

from __future__ import annotations

from pathlib import Path

from goldgate.local.runpod import EmulatorConfig, RunPodEmulator
from goldgate.runpod.control import ControlPlaneClient
from goldgate.runpod.resources import EndpointConfig, EndpointPatch, Scaling
from goldgate.spec import StackSpec

NOT_DEPLOYED = "not-deployed"


def start(spec: StackSpec, home: Path, api_key: str, logs_dir: Path, workers_dir: Path) -> RunPodEmulator:
    local = spec.local
    assert local is not None, "a local stack has a local: block"
    config = EmulatorConfig(
        api_key=api_key, logs_dir=logs_dir, workers_dir=workers_dir, home=home, stack=spec.name,
        rate_limit_requests=local.rate_limit_per_10s, rate_limit_window_s=10.0,
        webhook_retry_delay_s=local.webhook_retry_delay_s, result_retention_s=local.result_retention_s,
        # No default_ttl_ms from the stack: a /run without policy.ttl lives RunPod's 24 h default there, and here.
        gpu_type=spec.endpoint.cost_gpu_type, faults=local.faults,
    )
    return RunPodEmulator(config).start()


def _client(emu: RunPodEmulator) -> ControlPlaneClient:
    return ControlPlaneClient(api_key=emu.api_key, base_url=emu.base_url)


def create_endpoint(emu: RunPodEmulator, spec: StackSpec, image: str | None, env: dict[str, str]) -> str:
    """Create the stack's endpoint; with nothing deployed yet there is none (RunPod needs an image)."""
    if image is None:
        return NOT_DEPLOYED
    ep = spec.endpoint
    with _client(emu) as rp:
        created = rp.create_endpoint(EndpointConfig(
            name=ep.name, image=image, gpu_pools=ep.gpu_pools, env=env, gpu_count=ep.gpu_count,
            workers_min=ep.workers_min, workers_max=ep.workers_max, idle_timeout_s=ep.idle_timeout_s,
            scaling=Scaling(ep.scaler_type, ep.scaler_value), timeout_ms=ep.execution_timeout_ms,
            flashboot="FLASHBOOT" if ep.flashboot else "OFF", data_center_ids=ep.data_center_ids,
        ))
    return created.id


def update_endpoint(emu: RunPodEmulator, spec: StackSpec, endpoint_id: str, image: str | None,
                    env: dict[str, str]) -> str:
    """PATCH the image and env (a new release; same endpoint id). Creates the endpoint on first deploy."""
    if endpoint_id == NOT_DEPLOYED:
        return create_endpoint(emu, spec, image, env)
    with _client(emu) as rp:
        rp.update_endpoint(endpoint_id, EndpointPatch(image=image, env=env))
    return endpoint_id
