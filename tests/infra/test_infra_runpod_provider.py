"""The RunPod endpoint dynamic provider, called directly against the RunPod emulator on loopback.

The emulator rejects (422) any control-plane request that does not validate against RunPod's
REST v2 OpenAPI spec; the tests also record every request and validate it themselves."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import dill
import pulumi.dynamic
import pytest
from pulumi.runtime import rpc
from runpod_harness import API_KEY, IMG1, IMG2, Emulator

from goldgate.runpod import EndpointPatch, RunPodAuthError, RunPodError
from infra.runpod_provider import RunPodEndpointProvider


def declared(runpod: Emulator, **over: Any) -> dict[str, Any]:
    props = {"api_base": runpod.emu.base_url, "api_key": API_KEY, "endpoint_type": "QUEUE",
             "name": "goldgate-staging", "image": IMG1,
             "env": {"WORKFLOW_VERSION": "2026.11.0", "WORKER_IMAGE_TAG": IMG1, "R2_SECRET_ACCESS_KEY": "s3cr3t"},
             "gpu_pools": ["ADA_24"], "gpu_count": 1, "workers_min": 0, "workers_max": 3, "idle_timeout_s": 30,
             "scaler_type": "QUEUE_DELAY", "scaler_value": 4, "execution_timeout_ms": 600_000,
             "flashboot": "FLASHBOOT", "data_center_ids": [], "network_volume_ids": []}
    props.update(over)
    return props


def as_the_engine_sends(props: dict[str, Any]) -> dict[str, Any]:
    """The property bag after Pulumi's own wire encoding (protobuf Struct), as a deployed provider receives it."""
    return rpc.deserialize_properties(asyncio.run(rpc.serialize_properties(props, {})), True)


def test_create_makes_the_declared_endpoint(runpod):
    provider = RunPodEndpointProvider()
    result = provider.create(declared(runpod))
    with runpod.control() as rp:
        ep = rp.get_endpoint(result.id)
    assert result.outs["endpoint_id"] == ep.id == result.id
    assert ep.image == IMG1 and ep.workers_max == 3 and ep.gpu_pools == ("ADA_24",) and ep.flashboot == "FLASHBOOT"
    assert ep.env["WORKFLOW_VERSION"] == "2026.11.0" and ep.timeout_ms == 600_000
    assert result.outs["drift"] == [] and result.outs["idle_scaled_down"] is False
    assert runpod.invalid_requests() == []


def test_image_and_env_changes_update_in_place_and_keep_the_endpoint_id(runpod):
    provider = RunPodEndpointProvider()
    old = provider.create(declared(runpod))
    new = declared(runpod, image=IMG2, env={**declared(runpod)["env"], "WORKER_IMAGE_TAG": IMG2})
    diff = provider.diff(old.id, old.outs, new)
    assert diff.changes is True and diff.replaces == []
    updated = provider.update(old.id, old.outs, new)
    assert updated.outs["endpoint_id"] == old.id
    with runpod.control() as rp:
        ep = rp.get_endpoint(old.id)
        history = rp.list_releases(old.id)
    assert ep.image == IMG2 and ep.env["WORKER_IMAGE_TAG"] == IMG2
    assert history.latest is not None and any(d.field == "image" for d in history.latest.diff)
    patches = [body for method, _, body in runpod.requests if method == "PATCH"]
    assert patches == [{"image": IMG2, "env": new["env"]}]  # only what changed, env whole
    assert runpod.invalid_requests() == []


def test_diff_names_exactly_the_fields_that_force_a_replacement(runpod):
    provider = RunPodEndpointProvider()
    old = declared(runpod)
    assert provider.diff("ep", old, dict(old)).changes is False
    for field, value in (("workers_max", 5), ("workers_min", 1), ("gpu_pools", ["ADA_24", "AMPERE_24"]),
                         ("scaler_value", 8), ("execution_timeout_ms", 900_000), ("flashboot", "OFF"),
                         ("name", "goldgate-staging-2"), ("network_volume_ids", ["vol_1"]), ("api_key", "rotated"),
                         ("api_base", "http://127.0.0.1:1")):  # a moved API: update checks the endpoint is there
        diff = provider.diff("ep", old, {**old, field: value})
        assert diff.changes is True and diff.replaces == [], field
    assert provider.diff("ep", old, {**old, "endpoint_type": "LOAD_BALANCER"}).replaces == ["endpoint_type"]
    # Order of pools and a 4 vs 4.0 scaler value are not changes.
    assert provider.diff("ep", {**old, "gpu_pools": ["A", "B"], "scaler_value": 4},
                         {**old, "gpu_pools": ["B", "A"], "scaler_value": 4.0}).changes is False


def test_read_detects_idle_scale_down_and_update_restores_it(runpod):
    provider = RunPodEndpointProvider()
    created = provider.create(declared(runpod))
    with runpod.control() as rp:  # what RunPod does to an endpoint nobody called for 7 days
        rp.update_endpoint(created.id, EndpointPatch(workers_max=0))
    read = provider.read(created.id, created.outs)
    assert read.id == created.id and read.outs["workers_max"] == 0
    assert read.outs["idle_scaled_down"] is True
    assert {"field": "workers_max", "declared": 3, "actual": 0} in read.outs["drift"]
    diff = provider.diff(created.id, read.outs, declared(runpod))
    assert diff.changes is True and diff.replaces == []
    restored = provider.update(created.id, read.outs, declared(runpod))
    assert restored.outs["idle_scaled_down"] is False and restored.outs["drift"] == []
    with runpod.control() as rp:
        assert rp.get_endpoint(created.id).workers_max == 3
    assert runpod.invalid_requests() == []


def test_idle_scale_down_is_reported_for_inputs_as_the_engine_sends_them(runpod):
    # Pulumi carries every number as a double: a deployed provider sees workers_max 3.0, never 3.
    provider = RunPodEndpointProvider()
    created = provider.create(as_the_engine_sends(declared(runpod)))
    with runpod.control() as rp:
        rp.update_endpoint(created.id, EndpointPatch(workers_max=2))
    read = provider.read(created.id, as_the_engine_sends(created.outs))
    assert read.outs["idle_scaled_down"] is True
    assert {"field": "workers_max", "declared": 3, "actual": 2} in read.outs["drift"]
    assert "3.0" not in json.dumps(read.outs["drift"])


def test_check_refuses_more_min_than_max_workers_as_the_engine_sends_them(runpod):
    result = RunPodEndpointProvider().check({}, as_the_engine_sends(declared(runpod, workers_min=4, workers_max=2)))
    assert [f.property for f in result.failures] == ["workers_min"]
    assert "workers_min 4 exceeds workers_max 2" in result.failures[0].reason


def test_read_reports_env_drift_by_key_never_by_value(runpod):
    provider = RunPodEndpointProvider()
    created = provider.create(declared(runpod))
    with runpod.control() as rp:
        rp.update_endpoint(created.id, EndpointPatch(env={**declared(runpod)["env"], "R2_SECRET_ACCESS_KEY": "other"}))
    drift = provider.read(created.id, created.outs).outs["drift"]
    assert drift == [{"field": "env", "declared": ["R2_SECRET_ACCESS_KEY"], "actual": "changed"}]
    assert "s3cr3t" not in json.dumps(drift) and "other" not in json.dumps(drift)


def test_read_of_an_endpoint_deleted_outside_pulumi_reports_it_gone(runpod):
    provider = RunPodEndpointProvider()
    created = provider.create(declared(runpod))
    with runpod.control() as rp:
        rp.delete_endpoint(created.id)
    assert provider.read(created.id, created.outs).id == ""


def test_delete_removes_the_endpoint_and_is_idempotent(runpod):
    provider = RunPodEndpointProvider()
    created = provider.create(declared(runpod))
    provider.delete(created.id, created.outs)
    provider.delete(created.id, created.outs)
    with runpod.control() as rp:
        assert rp.find_endpoint(created.id) is None


def test_check_refuses_a_tag_and_an_empty_pool_list(runpod):
    result = RunPodEndpointProvider().check({}, declared(runpod, image="registry.example.com/example/worker:latest", gpu_pools=[]))
    assert {f.property for f in result.failures} == {"image", "gpu_pools"}
    result = RunPodEndpointProvider().check({}, declared(runpod, scaler_type="REQUEST_COUNT"))
    assert [f.property for f in result.failures] == ["scaler_type"]


def test_a_wrong_key_fails_clearly_without_echoing_it(runpod):
    with pytest.raises(RunPodAuthError) as err:
        RunPodEndpointProvider().create(declared(runpod, api_key="rp_wrong_key_abcdef"))
    assert "rp_wrong_key_abcdef" not in str(err.value) and "API key" in str(err.value)


def test_the_provider_survives_pulumis_pickling():
    provider = RunPodEndpointProvider()
    restored = dill.loads(base64.b64decode(pulumi.dynamic.dynamic.serialize_provider(provider)))
    assert isinstance(restored, RunPodEndpointProvider)


def test_reading_an_endpoint_without_its_credentials_fails_clearly():
    with pytest.raises(RunPodError, match="api_base and api_key are unknown"):
        RunPodEndpointProvider().read("ep_1", {})


def test_a_preview_with_the_worker_credentials_still_unknown_is_an_in_place_update(runpod):
    # Rotating the R2 keys replaces the Cloudflare token: until the new one exists, the preview sends the
    # worker's env (which carries the keys) as unknown. The endpoint must show as an update, keeping its id.
    provider = RunPodEndpointProvider()
    created = provider.create(as_the_engine_sends(declared(runpod)))
    news = as_the_engine_sends(declared(runpod, image=IMG2, env=rpc.UNKNOWN))
    diff = provider.diff(created.id, as_the_engine_sends(created.outs), news)
    assert diff.changes is True and diff.replaces == [] and diff.stables == ["endpoint_id"]
    # Once the token exists, the update sends the new keys to the same endpoint.
    new_env = {**declared(runpod)["env"], "R2_SECRET_ACCESS_KEY": "rotated", "WORKER_IMAGE_TAG": IMG2}
    updated = provider.update(created.id, created.outs, declared(runpod, image=IMG2, env=new_env))
    assert updated.outs["endpoint_id"] == created.id
    with runpod.control() as rp:
        assert rp.get_endpoint(created.id).env["R2_SECRET_ACCESS_KEY"] == "rotated"
