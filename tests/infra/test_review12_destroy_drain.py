"""`pulumi destroy` with jobs in flight: it stops before it deletes anything, instead of letting RunPod cancel the
jobs after the API Worker that would record their results is gone.

The program under mocks shows the order (the drain check depends on every other resource, so a destroy deletes it
first); its provider, called directly against the RunPod emulator, shows what that first delete does."""

from __future__ import annotations

import base64
import json
from typing import Any

import dill
import pulumi
import pulumi.dynamic
import pytest
from infra_harness import SECRETS, Cloud, RecordingMonitor, filled_stack_file, is_wire_secret
from runpod_harness import API_KEY, IMG1, Emulator
from test_infra_program import _settings

from goldgate.runpod import DataPlaneClient, RunPodError
from infra.program import read_config, run
from infra.runpod_provider import RunPodEndpointProvider

DRAIN = "runpod:DrainCheck"


class DependencyMonitor(RecordingMonitor):
    """Also keeps each resource's URN and the URNs it depends on (what orders a destroy)."""

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self.urns: dict[str, str] = {}
        self.dependencies: dict[str, set[str]] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.urns[request.name] = response.urn
        self.dependencies[request.name] = set(request.dependencies)
        return response


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_destroy_deletes_the_drain_check_before_any_other_resource(stack, stacks_dir, tmp_path, bundle):
    cloud = Cloud(stack)
    monitor = DependencyMonitor(cloud)
    pulumi.runtime.set_mocks(cloud, project="goldgate", stack=stack, preview=False, monitor=monitor)
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    pulumi.runtime.set_all_config({"goldgate:spec": json.dumps(doc), **SECRETS}, secret_keys=list(SECRETS))

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        guard = getattr(out.gpu, "drain_check", None)
        waits = [out.api.script.id, out.storage.migrations.id, out.storage.lifecycle.id, out.endpoint_base]
        return pulumi.Output.all(*waits, *([guard.id] if guard else [])).apply(lambda v: check(v[3]))

    def check(endpoint_base: str) -> None:
        guards = cloud.by_type(DRAIN)
        assert [g.name for g in guards] == [f"{stack}-drain-check"], "no drain check: destroy cancels jobs in flight"
        guard = guards[0]
        # Pulumi deletes a resource only after every resource that depends on it: the check goes first, alone.
        others = {monitor.urns[r.name] for r in cloud.registered.values()
                  if r.name != guard.name and not r.type.startswith(("goldgate:", "pulumi:providers:"))}
        assert others and others <= monitor.dependencies[guard.name], others - monitor.dependencies[guard.name]
        assert guard.inputs["endpoint_base"] == endpoint_base and guard.inputs["stack"] == stack
        # What proves a 404 from /health: the endpoint's own id, listed (or not) by the endpoint's control plane.
        endpoint = cloud.one("runpod:ServerlessEndpoint")
        assert guard.inputs["endpoint_id"] == endpoint.id and endpoint_base.endswith(f"/{endpoint.id}")
        assert guard.inputs["api_base"] == endpoint.inputs["api_base"]
        assert guard.inputs["api_key"] == SECRETS["goldgate:runpodApiKey"]
        assert is_wire_secret(guard.wire["api_key"]) and "api_key" in guard.secret_outputs
        assert "goldgate:gpu:Endpoint" in guard.parent

    program()


def _endpoint(runpod: Emulator) -> tuple[str, str]:
    """An endpoint that starts no worker, so a job submitted to it stays queued; -> (id, its data-plane base)."""
    props = {"api_base": runpod.emu.base_url, "api_key": API_KEY, "endpoint_type": "QUEUE", "name": "goldgate-staging",
             "image": IMG1, "env": {}, "gpu_pools": ["ADA_24"], "gpu_count": 1, "workers_min": 0, "workers_max": 0,
             "idle_timeout_s": 5, "scaler_type": "QUEUE_DELAY", "scaler_value": 4,
             "execution_timeout_ms": 600_000, "flashboot": "OFF", "data_center_ids": [], "network_volume_ids": []}
    endpoint_id = RunPodEndpointProvider().create(props).id
    return endpoint_id, f"{runpod.emu.endpoint_base}/{endpoint_id}"


def _drain_check(base: str, key: str = API_KEY, **control_plane: str) -> tuple[Any, str, dict[str, Any]]:
    """`control_plane`: api_base and endpoint_id, as gpu.py gives them (a stack from before them has neither)."""
    from infra.runpod_drain_provider import DrainCheckProvider

    provider = DrainCheckProvider()
    created = provider.create({"stack": "staging", "endpoint_base": base, "api_key": key, **control_plane})
    return provider, created.id, created.outs


def _declared(runpod: Emulator, endpoint_id: str) -> dict[str, str]:
    return {"api_base": runpod.emu.base_url, "endpoint_id": endpoint_id}


def test_destroy_with_a_job_queued_stops_and_cancels_nothing(runpod):
    endpoint_id, base = _endpoint(runpod)
    with DataPlaneClient.for_endpoint_base(API_KEY, base) as endpoint:
        job = endpoint.run({"workflow_id": "sdxl-txt2img"})
        provider, guard_id, outs = _drain_check(base, **_declared(runpod, endpoint_id))
        with pytest.raises(RunPodError) as refused:
            provider.delete(guard_id, outs)
        message = str(refused.value)
        assert "1 job queued" in message and "Nothing was deleted" in message and f"{base}/purge-queue" in message
        assert API_KEY not in message
        assert endpoint.status(job.id).status == "IN_QUEUE"  # not cancelled
    with runpod.control() as rp:
        assert rp.find_endpoint(endpoint_id) is not None


def test_destroy_goes_on_once_no_job_is_in_flight_or_the_endpoint_is_gone(runpod):
    endpoint_id, base = _endpoint(runpod)
    provider, guard_id, outs = _drain_check(base, **_declared(runpod, endpoint_id))
    with DataPlaneClient.for_endpoint_base(API_KEY, base) as endpoint:
        job = endpoint.run({"workflow_id": "sdxl-txt2img"})
        endpoint.cancel(job.id)  # given up deliberately, as the refusal says
    provider.delete(guard_id, outs)
    with runpod.control() as rp:
        rp.delete_endpoint(endpoint_id)
    provider.delete(guard_id, outs)  # deleted outside Pulumi: nothing of it can be cancelled any more


def test_destroy_stops_when_a_retired_data_plane_404s_while_the_endpoint_still_runs_jobs(runpod, stub):
    stub.handler.status = 404  # RunPod moved its data plane: the old base answers 404 to every path
    endpoint_id, base = _endpoint(runpod)
    with DataPlaneClient.for_endpoint_base(API_KEY, base) as endpoint:
        job = endpoint.run({"workflow_id": "sdxl-txt2img"})
        retired = f"{stub.base_url}/v2/{endpoint_id}"
        provider, guard_id, outs = _drain_check(retired, **_declared(runpod, endpoint_id))
        with pytest.raises(RunPodError) as refused:
            provider.delete(guard_id, outs)
        message = str(refused.value)
        assert "still listed" in message and "Nothing was deleted" in message, message
        assert "goldgate:spec.cloud.runpod_endpoint_base" in message and API_KEY not in message
        assert endpoint.status(job.id).status == "IN_QUEUE"


def test_destroy_stops_when_neither_plane_can_say_the_endpoint_is_gone(stub):
    stub.handler.status = 404  # a retired API: the control plane's listing 404s too
    provider, guard_id, outs = _drain_check(f"{stub.base_url}/v2/ep0123456789ab", api_base=stub.base_url,
                                            endpoint_id="ep0123456789ab")
    with pytest.raises(RunPodError, match="Nothing was deleted") as refused:
        provider.delete(guard_id, outs)
    assert "listing endpoints" in str(refused.value)


def test_a_drain_check_from_before_the_control_plane_inputs_refuses_a_404_until_pulumi_up(runpod):
    endpoint_id, base = _endpoint(runpod)
    with runpod.control() as rp:
        rp.delete_endpoint(endpoint_id)
    provider, guard_id, old_state = _drain_check(base)  # as an older goldgate recorded it
    with pytest.raises(RunPodError, match="run `pulumi up` once, then destroy again"):
        provider.delete(guard_id, {k: v for k, v in old_state.items() if v is not None})
    news = {**old_state, **_declared(runpod, endpoint_id)}
    diff = provider.diff(guard_id, old_state, news)
    assert diff.changes is True and diff.replaces == []  # that `pulumi up` updates it in place
    provider.delete(guard_id, provider.update(guard_id, old_state, news).outs)


def test_destroy_stops_when_runpod_cannot_say_and_does_not_echo_the_key(stub):
    stub.handler.status = 401
    provider, guard_id, outs = _drain_check(f"{stub.base_url}/v2/ep123", key="rp_revoked_key_0123456789")
    with pytest.raises(RunPodError) as refused:
        provider.delete(guard_id, outs)
    assert "nothing was deleted" in str(refused.value) and "rp_revoked_key_0123456789" not in str(refused.value)


def test_a_rotated_runpod_key_reaches_the_drain_checks_state_in_place(runpod):
    _, base = _endpoint(runpod)
    provider, guard_id, outs = _drain_check(base, key="rp_old_key_0123456789")
    news = {**outs, "api_key": API_KEY}
    diff = provider.diff(guard_id, outs, news)
    assert diff.changes is True and diff.replaces == []
    assert provider.update(guard_id, outs, news).outs["api_key"] == API_KEY
    assert provider.read(guard_id, outs).outs == outs  # a refresh calls nothing (a revoked key cannot fail it)


def test_the_drain_check_provider_survives_pulumis_pickling():
    from infra.runpod_drain_provider import DrainCheckProvider

    restored = dill.loads(base64.b64decode(pulumi.dynamic.dynamic.serialize_provider(DrainCheckProvider())))
    assert isinstance(restored, DrainCheckProvider)
