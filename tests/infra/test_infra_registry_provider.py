"""The registry credential dynamic provider and the endpoint's `registry`, called directly against the RunPod
emulator on loopback (which rejects requests the OpenAPI spec forbids, and refuses to delete a credential an
endpoint still names, so a wrong rotation order fails here)."""

from __future__ import annotations

import base64
import json
from typing import Any

import dill
import pulumi.dynamic
import pytest
from runpod_harness import API_KEY, Emulator
from test_infra_runpod_provider import declared

from goldgate.runpod import EndpointPatch, RunPodAuthError, RunPodError, RunPodRejected
from infra.runpod_provider import RunPodEndpointProvider
from infra.runpod_registry_provider import RunPodRegistryCredentialProvider, fingerprint

USERNAME = "robot$goldgate-puller"
PASSWORD = "pw-first-0c1d2e3f4a5b6c7d"
ROTATED = "pw-second-9f8e7d6c5b4a3f2e"


def credential(runpod: Emulator, **over: Any) -> dict[str, Any]:
    return {"api_base": runpod.emu.base_url, "api_key": API_KEY, "name": "goldgate-staging-registry",
            "username": USERNAME, "password": PASSWORD, **over}


def _text(value: Any) -> str:
    return json.dumps(value, default=str)


# ---- the credential resource -----------------------------------------------------------------------


def test_create_stores_the_credential_and_its_outputs_hold_no_login(runpod):
    created = RunPodRegistryCredentialProvider().create(credential(runpod))
    with runpod.control() as rp:
        registry = rp.get_registry(created.id)
    assert created.outs["registry_id"] == registry.id == created.id
    assert registry.name == created.outs["registry_name"] and registry.name.startswith("goldgate-staging-registry-")
    assert "username" not in created.outs and "password" not in created.outs
    assert PASSWORD not in _text(created.outs) and USERNAME not in _text(created.outs)
    assert created.outs["password_fingerprint"] == fingerprint(created.outs["salt"], "password", PASSWORD)
    assert runpod.invalid_requests() == []
    log = (runpod.emu.logs_dir / "runpod-emulator.jsonl").read_text()
    assert PASSWORD not in log and USERNAME not in log


def test_two_credentials_from_one_name_do_not_collide(runpod):
    provider = RunPodRegistryCredentialProvider()
    first, second = provider.create(credential(runpod)), provider.create(credential(runpod, password=ROTATED))
    assert first.id != second.id and first.outs["registry_name"] != second.outs["registry_name"]


def test_diff_replaces_on_a_new_login_and_names_the_field(runpod):
    provider = RunPodRegistryCredentialProvider()
    old = provider.create(credential(runpod)).outs
    unchanged = provider.diff("r", old, credential(runpod))
    assert unchanged.changes is False and unchanged.replaces == []
    for field, value in (("password", ROTATED), ("username", "robot$other"), ("name", "goldgate-staging-reg2"),
                         ("api_base", "http://127.0.0.1:1")):
        diff = provider.diff("r", old, credential(runpod, **{field: value}))
        assert diff.changes is True and diff.replaces == [field], field
        assert diff.delete_before_replace is False  # the new credential exists before the old one goes
    rotated_key = provider.diff("r", old, credential(runpod, api_key="rp_rotated_key"))
    assert rotated_key.changes is True and rotated_key.replaces == []


def test_diff_of_a_state_without_fingerprints_replaces_to_be_safe(runpod):
    olds = {k: v for k, v in credential(runpod).items() if k not in ("username", "password")}
    assert set(RunPodRegistryCredentialProvider().diff("r", olds, credential(runpod)).replaces) == {"username",
                                                                                                   "password"}


def test_update_with_a_rotated_api_key_keeps_the_credential(runpod):
    provider = RunPodRegistryCredentialProvider()
    created = provider.create(credential(runpod))
    updated = provider.update(created.id, created.outs, credential(runpod))
    assert updated.outs["registry_id"] == created.id
    assert updated.outs["password_fingerprint"] == created.outs["password_fingerprint"]
    assert PASSWORD not in _text(updated.outs)


def test_read_refreshes_and_reports_a_credential_deleted_outside_pulumi(runpod):
    provider = RunPodRegistryCredentialProvider()
    created = provider.create(credential(runpod))
    read = provider.read(created.id, created.outs)
    assert read.id == created.id and read.outs["registry_name"] == created.outs["registry_name"]
    with runpod.control() as rp:
        rp.delete_registry(created.id)
    assert provider.read(created.id, created.outs).id == ""


def test_delete_removes_the_credential_and_is_idempotent(runpod):
    provider = RunPodRegistryCredentialProvider()
    created = provider.create(credential(runpod))
    provider.delete(created.id, created.outs)
    provider.delete(created.id, created.outs)
    with runpod.control() as rp:
        assert rp.find_registry(created.id) is None and rp.list_registries() == ()


def test_check_refuses_an_empty_login_without_echoing_it(runpod):
    result = RunPodRegistryCredentialProvider().check({}, credential(runpod, password="", username=""))
    assert {f.property for f in result.failures} == {"username", "password"}
    assert any("goldgate:registryPassword" in f.reason for f in result.failures)
    assert RunPodRegistryCredentialProvider().check({}, credential(runpod)).failures == []


def test_a_wrong_api_key_fails_without_showing_the_key_or_the_login(runpod):
    with pytest.raises(RunPodAuthError) as err:
        RunPodRegistryCredentialProvider().create(credential(runpod, api_key="rp_wrong_key_abcdef"))
    text = f"{err.value} {err.value!r} {err.value.detail}"
    assert "API key" in text
    for secret in ("rp_wrong_key_abcdef", PASSWORD, USERNAME):
        assert secret not in text


def test_the_registry_provider_survives_pulumis_pickling():
    provider = RunPodRegistryCredentialProvider()
    restored = dill.loads(base64.b64decode(pulumi.dynamic.dynamic.serialize_provider(provider)))
    assert isinstance(restored, RunPodRegistryCredentialProvider)


def test_reading_a_credential_without_its_api_coordinates_fails_clearly():
    with pytest.raises(RunPodError, match="api_base and api_key are unknown"):
        RunPodRegistryCredentialProvider().read("reg_1", {})


# ---- the endpoint's registry -----------------------------------------------------------------------


def test_the_endpoint_is_created_with_the_credential(runpod):
    reg = RunPodRegistryCredentialProvider().create(credential(runpod))
    created = RunPodEndpointProvider().create(declared(runpod, registry=reg.id))
    with runpod.control() as rp:
        assert rp.get_endpoint(created.id).registry == reg.id
    assert created.outs["declared"]["registry"] == reg.id and created.outs["drift"] == []
    assert runpod.invalid_requests() == []


def test_password_rotation_creates_repoints_then_deletes_in_pulumis_order(runpod):
    """What `pulumi up` does after `pulumi config set --secret goldgate:registryPassword <new>`."""
    creds, endpoints = RunPodRegistryCredentialProvider(), RunPodEndpointProvider()
    old = creds.create(credential(runpod))
    ep = endpoints.create(declared(runpod, registry=old.id))

    assert creds.diff(old.id, old.outs, credential(runpod, password=ROTATED)).replaces == ["password"]
    new = creds.create(credential(runpod, password=ROTATED))                  # 1. create the replacement
    news = declared(runpod, registry=new.id)
    diff = endpoints.diff(ep.id, ep.outs, news)
    assert diff.changes is True and diff.replaces == []                       # 2. the endpoint is patched ...
    updated = endpoints.update(ep.id, ep.outs, news)
    assert updated.outs["endpoint_id"] == ep.id                               #    ... in place
    creds.delete(old.id, old.outs)                                            # 3. only then the old one goes

    with runpod.control() as rp:
        assert rp.get_endpoint(ep.id).registry == new.id
        assert [r.id for r in rp.list_registries()] == [new.id]
    patches = [body for method, _, body in runpod.requests if method == "PATCH"]
    assert patches == [{"registry": new.id}]
    assert runpod.invalid_requests() == []


def test_deleting_the_old_credential_before_repointing_is_refused(runpod):
    # The order above matters: RunPod (as emulated) will not delete a credential an endpoint pulls with.
    creds = RunPodRegistryCredentialProvider()
    old = creds.create(credential(runpod))
    RunPodEndpointProvider().create(declared(runpod, registry=old.id))
    with pytest.raises(RunPodRejected, match="in use by endpoint"):
        creds.delete(old.id, old.outs)


def test_dropping_the_credential_from_the_spec_clears_it_on_the_endpoint(runpod):
    reg = RunPodRegistryCredentialProvider().create(credential(runpod))
    endpoints = RunPodEndpointProvider()
    ep = endpoints.create(declared(runpod, registry=reg.id))
    news = declared(runpod)  # Pulumi drops a None input: no `registry` key at all
    assert endpoints.diff(ep.id, ep.outs, news).changes is True
    endpoints.update(ep.id, ep.outs, news)
    with runpod.control() as rp:
        assert rp.get_endpoint(ep.id).registry is None
    assert [body for method, _, body in runpod.requests if method == "PATCH"] == [{"registry": None}]
    assert runpod.invalid_requests() == []


def test_a_credential_attached_outside_pulumi_is_drift_and_update_clears_it(runpod):
    reg = RunPodRegistryCredentialProvider().create(credential(runpod))
    endpoints = RunPodEndpointProvider()
    ep = endpoints.create(declared(runpod))
    assert "registry" not in ep.outs and ep.outs["declared"]["registry"] is None
    with runpod.control() as rp:
        rp.update_endpoint(ep.id, EndpointPatch(registry=reg.id))
    read = endpoints.read(ep.id, ep.outs)
    assert {"field": "registry", "declared": None, "actual": reg.id} in read.outs["drift"]
    assert endpoints.diff(ep.id, read.outs, declared(runpod)).changes is True
    restored = endpoints.update(ep.id, read.outs, declared(runpod))
    assert restored.outs["drift"] == []


def test_a_registry_change_alone_patches_only_the_registry(runpod):
    creds = RunPodRegistryCredentialProvider()
    first, second = creds.create(credential(runpod)), creds.create(credential(runpod, password=ROTATED))
    endpoints = RunPodEndpointProvider()
    ep = endpoints.create(declared(runpod, registry=first.id))
    endpoints.update(ep.id, ep.outs, declared(runpod, registry=second.id))
    with runpod.control() as rp:
        history = rp.list_releases(ep.id)
    assert history.latest is not None and {d.field for d in history.latest.diff} == {"registry"}


def test_endpoint_check_refuses_a_malformed_registry_id(runpod):
    result = RunPodEndpointProvider().check({}, declared(runpod, registry="registry.example.com/your-org"))
    assert [f.property for f in result.failures] == ["registry"]
    assert RunPodEndpointProvider().check({}, declared(runpod, registry="6n2k8v4d")).failures == []
