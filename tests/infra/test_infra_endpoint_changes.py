"""What `pulumi up` does to the RunPod endpoint on a change, as an operator promoting, rolling back or
retuning lives it: the provider called directly against the emulator (every request checked against the
OpenAPI spec), and against stub control planes that fail the way real ones do."""

from __future__ import annotations

import json
from typing import Any

import pytest
from runpod_harness import API_KEY, IMG1, IMG2, Emulator
from test_infra_runpod_provider import declared

from goldgate.runpod import EndpointPatch, RunPodError, RunPodUnavailable
from infra.runpod_provider import SECRET_OUTPUTS, RunPodEndpointProvider
from infra.runpod_registry_provider import RunPodRegistryCredentialProvider


def _patches(runpod: Emulator) -> list[Any]:
    return [body for method, _, body in runpod.requests if method == "PATCH"]


def test_promotion_then_rollback_patch_only_the_image_and_keep_the_endpoint(runpod):
    provider = RunPodEndpointProvider()
    env = declared(runpod)["env"]
    created = provider.create(declared(runpod))
    state = created.outs
    for image in (IMG2, IMG1):  # promote the new digest, then roll back to the old one
        news = declared(runpod, image=image, env={**env, "WORKER_IMAGE_TAG": image})
        diff = provider.diff(created.id, state, news)
        assert diff.changes is True and diff.replaces == []
        state = provider.update(created.id, state, news).outs
        assert state["endpoint_id"] == created.id
    assert [set(p) for p in _patches(runpod)] == [{"image", "env"}, {"image", "env"}]
    assert [p["image"] for p in _patches(runpod)] == [IMG2, IMG1]
    with runpod.control() as rp:
        assert rp.get_endpoint(created.id).image == IMG1
        assert [e.id for e in rp.list_endpoints()] == [created.id]  # no second endpoint, ever
    assert runpod.invalid_requests() == []


@pytest.mark.parametrize(("change", "sent"), [
    ({"gpu_pools": ["ADA_24", "AMPERE_48"]}, {"gpu": {"pools": ["ADA_24", "AMPERE_48"], "count": 1}}),
    ({"gpu_count": 2}, {"gpu": {"pools": ["ADA_24"], "count": 2}}),
    ({"workers_min": 1}, {"workers": {"min": 1, "max": 3, "idleTimeout": 30}}),
    ({"workers_max": 5}, {"workers": {"min": 0, "max": 5, "idleTimeout": 30}}),
    ({"idle_timeout_s": 120}, {"workers": {"min": 0, "max": 3, "idleTimeout": 120}}),
    ({"scaler_value": 8}, {"scaling": {"type": "QUEUE_DELAY", "queueDelay": 8}}),
    ({"execution_timeout_ms": 900_000}, {"timeout": 900_000}),
    ({"flashboot": "OFF"}, {"flashboot": "OFF"}),
    ({"env": {"WORKFLOW_VERSION": "2026.12.0", "WORKER_IMAGE_TAG": IMG1, "R2_SECRET_ACCESS_KEY": "s3cr3t"}},
     {"env": {"WORKFLOW_VERSION": "2026.12.0", "WORKER_IMAGE_TAG": IMG1, "R2_SECRET_ACCESS_KEY": "s3cr3t"}}),
])
def test_a_tuning_change_is_one_in_place_patch_of_that_field(runpod, change, sent):
    provider = RunPodEndpointProvider()
    created = provider.create(declared(runpod))
    news = declared(runpod, **change)
    diff = provider.diff(created.id, created.outs, news)
    assert diff.changes is True and diff.replaces == []
    updated = provider.update(created.id, created.outs, news)
    assert updated.outs["endpoint_id"] == created.id and updated.outs["drift"] == []
    assert _patches(runpod) == [sent]
    assert runpod.invalid_requests() == []


@pytest.mark.parametrize("make", [RunPodEndpointProvider, RunPodRegistryCredentialProvider])
def test_refresh_during_a_runpod_outage_is_an_error_not_a_deleted_resource(runpod, stub, make):
    stub.handler.status = 503
    with pytest.raises(RunPodUnavailable):
        make().read("ep0123456789ab", {**declared(runpod), "api_base": stub.base_url})


@pytest.mark.parametrize("make", [RunPodEndpointProvider, RunPodRegistryCredentialProvider])
def test_refresh_against_a_control_plane_that_404s_everything_does_not_forget_the_resource(runpod, stub, make):
    # A moved or retired API (REST v1 was retired this way) answers 404 to every path: that proves nothing about
    # the endpoint, and reporting it gone would make the next `pulumi up` create a second one with a new id.
    stub.handler.status = 404
    props = {**declared(runpod), "api_base": stub.base_url, "username": "u", "password": "p"}
    with pytest.raises(RunPodError, match="gone"):
        make().read("ep0123456789ab", props)


def test_importing_an_existing_endpoint_with_the_programs_inputs_adopts_it_unchanged(runpod):
    # `import_` (or a Pulumi get) sends the program's inputs and no prior state: read must find the endpoint and
    # report it so that the next diff against the same inputs is empty, not an update or a replacement.
    provider = RunPodEndpointProvider()
    existing = provider.create(declared(runpod)).id
    runpod.requests.clear()
    read = provider.read(existing, declared(runpod))
    assert read.id == existing and read.outs["endpoint_id"] == existing and read.outs["drift"] == []
    diff = provider.diff(existing, read.outs, declared(runpod))
    assert diff.changes is False
    assert [m for m, _, _ in runpod.requests] == ["GET"]  # adopting it changed nothing at RunPod


def test_every_state_field_carrying_a_secret_is_marked_secret(runpod):
    # The engine stores a dynamic resource's outputs in the state; only those named in additional_secret_outputs
    # (or carried by a secret input) are encrypted. Create, update (a rotated R2 key) and refresh (with drift).
    provider = RunPodEndpointProvider()
    env = declared(runpod)["env"]
    created = provider.create(declared(runpod))
    rotated = {**env, "R2_SECRET_ACCESS_KEY": "r0tated-s3cr3t"}
    updated = provider.update(created.id, created.outs, declared(runpod, env=rotated))
    with runpod.control() as rp:  # someone pastes another secret into the endpoint's env by hand
        rp.update_endpoint(created.id, EndpointPatch(env={**rotated, "R2_SECRET_ACCESS_KEY": "h4nd-s3cr3t"}))
    refreshed = provider.read(created.id, updated.outs)
    for outs in (created.outs, updated.outs, refreshed.outs):
        carrying = {k for k, v in outs.items() if any(s in json.dumps(v) for s in
                                                      ("s3cr3t", "r0tated-s3cr3t", "h4nd-s3cr3t", API_KEY))}
        assert carrying and carrying <= set(SECRET_OUTPUTS), carrying


def test_a_new_address_for_the_same_control_plane_keeps_the_endpoint(runpod):
    # RunPod moved its API before (REST v1 was retired); the account, hence the endpoint, is the API key's. A new
    # base URL must not create a second endpoint (new id, new URL, empty queue) and delete the first.
    provider = RunPodEndpointProvider()
    created = provider.create(declared(runpod))
    moved = runpod.emu.base_url.replace("127.0.0.1", "localhost")
    news = declared(runpod, api_base=moved)
    diff = provider.diff(created.id, created.outs, news)
    assert diff.changes is True and diff.replaces == []
    updated = provider.update(created.id, created.outs, news)
    assert updated.outs["endpoint_id"] == created.id and updated.outs["api_base"] == moved
    with runpod.control() as rp:
        assert [e.id for e in rp.list_endpoints()] == [created.id]


def test_a_base_url_where_the_endpoint_does_not_exist_fails_with_the_deliberate_way_to_move(runpod, stub):
    provider = RunPodEndpointProvider()
    created = provider.create(declared(runpod))
    stub.handler.status = 404
    with pytest.raises(RunPodError, match=r"not at .*--replace"):
        provider.update(created.id, created.outs, declared(runpod, api_base=stub.base_url))
    with runpod.control() as rp:
        assert rp.get_endpoint(created.id).id == created.id
