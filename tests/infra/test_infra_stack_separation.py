"""STAGING and PROD never touch each other, and a second `pulumi up` with nothing changed is a no-op.

Separation: the real program under mocks and the guardrails, with stack files that collide where an operator's
edit could make them. Idempotency: each dynamic provider's diff between the state it wrote itself (after create,
and after a refresh) and the same inputs, as the engine sends them, against the RunPod emulator and the D1
stand-in."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from infra_harness import filled_stack_file, use_cloud
from pulumi.runtime import rpc
from runpod_harness import Emulator
from test_infra_d1_migrations import props as d1_props
from test_infra_policies import _stack_args, violations
from test_infra_program import _settings
from test_infra_registry_provider import credential
from test_infra_runpod_provider import declared

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.errors import SpecError
from goldgate.runpod import EndpointPatch
from infra.d1_migrations_provider import D1MigrationsProvider
from infra.policies import STACKS_SHARE_NOTHING, GuardrailError
from infra.program import read_config, run
from infra.runpod_provider import RunPodEndpointProvider
from infra.runpod_registry_provider import RunPodRegistryCredentialProvider

ZONE = "0123456789abcdef0123456789abcdef"


def _write(stacks_dir: Path, stack: str, api: dict[str, Any]) -> dict[str, Any]:
    """Stack file `stack` in stacks_dir with its api block changed; returns its goldgate:spec."""
    doc = filled_stack_file(stack)
    spec = doc["config"]["goldgate:spec"]
    spec["api"].update(api)
    spec["api"] = {k: v for k, v in spec["api"].items() if v is not None}
    (stacks_dir / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc))
    return spec


# ---- one API address, two stacks ---------------------------------------------------------------------------

# Each pair sends one stack's clients and RunPod webhooks to the other stack's Worker, though no two values match
# as written (a bare host, a URL, a route pattern; case).
SHARED_HOST = [
    ({"custom_domain": "api.example.com", "zone_id": ZONE}, {"public_base_url": "https://api.example.com"}),
    ({"public_base_url": "https://API.example.com"}, {"custom_domain": "api.example.com", "zone_id": ZONE}),
    ({"route": "api.example.com/*", "zone_id": ZONE, "public_base_url": None},
     {"public_base_url": "https://api.example.com/"}),
    ({"route": "https://*example.com/*", "zone_id": ZONE, "public_base_url": "https://staging.example.com"},
     {"route": "example.com/*", "zone_id": ZONE, "public_base_url": None}),
]


@pytest.mark.parametrize(("staging_api", "prod_api"), SHARED_HOST)
def test_prod_refuses_an_api_address_that_is_stagings(staging_api, prod_api, stacks_dir, tmp_path, bundle):
    _write(stacks_dir, "staging", staging_api)
    cloud = use_cloud("prod", _write(stacks_dir, "prod", prod_api))
    spec, secrets, _ = read_config("prod")
    with pytest.raises(GuardrailError) as err:
        run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
    assert "stacks prod and staging share" in str(err.value) and "example.com'" in str(err.value)
    assert not cloud.registered  # refused before any resource was declared


@pytest.mark.parametrize(("staging_api", "prod_api"), SHARED_HOST)
def test_the_policy_pack_refuses_an_api_address_shared_across_stack_files(staging_api, prod_api, stacks_dir):
    _write(stacks_dir, "staging", staging_api)
    _write(stacks_dir, "prod", prod_api)
    assert any("share" in m and "example.com'" in m
               for m in violations(STACKS_SHARE_NOTHING, _stack_args("prod", [], stacks_dir)))


def test_two_hosts_in_one_zone_are_separate_stacks(stacks_dir, tmp_path, bundle):
    # STAGING's `*.example.com/*` route serves only the zone's subdomains, not PROD's example.com.
    _write(stacks_dir, "staging", {"route": "*.example.com/*", "zone_id": ZONE,
                                   "public_base_url": "https://staging-api.example.com"})
    cloud = use_cloud("prod", _write(stacks_dir, "prod", {"custom_domain": "example.com", "zone_id": ZONE}))

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config("prod")
        return run(spec, secrets, _settings(stacks_dir, tmp_path), bundle).api.script.id

    program()
    assert cloud.one("workersCustomDomain:WorkersCustomDomain").inputs["hostname"] == "example.com"


# ---- a stack file whose role contradicts its name ----------------------------------------------------------

@pytest.mark.parametrize(("stack", "role"), [("prod", "staging"), ("staging", "prod")])
def test_a_pulumi_stack_whose_role_contradicts_its_name_declares_nothing(stack, role, stacks_dir, tmp_path, bundle):
    # PROD with role staging would deploy its D1, bucket and endpoint unprotected and take any candidate image.
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    doc["role"] = role
    cloud = use_cloud(stack, doc)
    with pytest.raises(SpecError, match=f"goldgate:spec.role: '{role}' contradicts the stack's name '{stack}'"):
        spec, secrets, _ = read_config(stack)
        run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
    assert not cloud.registered


# ---- a stack file copied with its secrets -------------------------------------------------------------------

def _encrypted(stacks_dir: Path, stack: str, ciphertexts: dict[str, str]) -> dict[str, Any]:
    """Stack file `stack` holding these `secure:` values, as `pulumi config set --secret` writes them."""
    doc = filled_stack_file(stack)
    doc["config"].update({f"goldgate:{key}": {"secure": value} for key, value in ciphertexts.items()})
    (stacks_dir / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc))
    return doc["config"]["goldgate:spec"]


def test_a_stack_file_copied_with_stagings_api_token_is_refused(stacks_dir, tmp_path, bundle):
    # Pulumi encrypts every value with a fresh nonce: the same ciphertext twice is a copy, which a passphrase
    # secrets provider decrypts to STAGING's token, the one STAGING's golden tests and clients hold.
    _encrypted(stacks_dir, "staging", {"apiToken": "v1:c2hhcmVk:c2FtZQ==", "webhookSecret": "v1:c3Rn:b25l"})
    cloud = use_cloud("prod", _encrypted(stacks_dir, "prod", {"apiToken": "v1:c2hhcmVk:c2FtZQ==",
                                                             "webhookSecret": "v1:cHJk:dHdv"}))
    spec, secrets, _ = read_config("prod")
    with pytest.raises(GuardrailError) as err:
        run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
    message = str(err.value)
    assert "stacks prod and staging hold the same encrypted goldgate:apiToken" in message
    assert "pulumi config set --secret goldgate:apiToken --stack prod" in message and "webhookSecret" not in message
    assert "c2hhcmVk" not in message  # not even the ciphertext
    assert not cloud.registered
    found = violations(STACKS_SHARE_NOTHING, _stack_args("staging", [], stacks_dir))
    assert any("same encrypted goldgate:apiToken" in m for m in found)


def test_stacks_whose_secrets_were_each_set_deploy(stacks_dir, tmp_path, bundle):
    _encrypted(stacks_dir, "staging", {"apiToken": "v1:YQ==:c3Rn", "webhookSecret": "v1:Yg==:c3Rn"})
    cloud = use_cloud("prod", _encrypted(stacks_dir, "prod", {"apiToken": "v1:YQ==:cHJk", "webhookSecret": "v1:Yg==:cHJk"}))

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config("prod")
        return run(spec, secrets, _settings(stacks_dir, tmp_path), bundle).api.script.id

    program()
    assert cloud.one("workersScript:WorkersScript")


# ---- a second `pulumi up` changes nothing ------------------------------------------------------------------

def as_the_engine_sends(props: dict[str, Any]) -> dict[str, Any]:
    """A property bag after Pulumi's wire encoding (numbers as doubles, None dropped), as a deployed provider gets it."""
    return rpc.deserialize_properties(asyncio.run(rpc.serialize_properties(props, {})), True)


def _no_change(provider: Any, id_: str, state: dict[str, Any], news: dict[str, Any]) -> None:
    diff = provider.diff(id_, as_the_engine_sends(state), news)
    assert (diff.changes, diff.replaces) == (False, []), diff.replaces


def test_the_endpoint_it_created_or_refreshed_needs_no_update(runpod: Emulator):
    provider = RunPodEndpointProvider()
    inputs = declared(runpod, gpu_pools=["ADA_24", "AMPERE_24"], data_center_ids=["US-TX-3", "EU-RO-1"])
    news = as_the_engine_sends(provider.check({}, as_the_engine_sends(inputs)).inputs)
    created = provider.create(news)
    _no_change(provider, created.id, created.outs, news)
    refreshed = provider.read(created.id, as_the_engine_sends(created.outs)).outs
    assert refreshed["drift"] == []
    _no_change(provider, created.id, refreshed, news)
    _no_change(provider, created.id, provider.read(created.id, as_the_engine_sends(refreshed)).outs, news)
    # The program builds env from several dicts: another key order is the same env.
    _no_change(provider, created.id, refreshed, {**news, "env": dict(reversed(list(news["env"].items())))})
    with runpod.control() as rp:  # RunPod answering lists in its own order is not drift either
        rp.update_endpoint(created.id, EndpointPatch(gpu_pools=("AMPERE_24", "ADA_24"),
                                                     data_center_ids=("EU-RO-1", "US-TX-3")))
    reordered = provider.read(created.id, as_the_engine_sends(refreshed)).outs
    assert reordered["gpu_pools"] == ["AMPERE_24", "ADA_24"] and reordered["drift"] == []
    _no_change(provider, created.id, reordered, news)
    assert [m for m, _, _ in runpod.requests].count("PATCH") == 1  # only the reordering above


def test_the_registry_credential_it_created_or_refreshed_is_not_replaced(runpod: Emulator):
    provider = RunPodRegistryCredentialProvider()
    news = as_the_engine_sends(provider.check({}, as_the_engine_sends(credential(runpod))).inputs)
    created = provider.create(news)
    _no_change(provider, created.id, created.outs, news)
    refreshed = provider.read(created.id, as_the_engine_sends(created.outs)).outs
    _no_change(provider, created.id, refreshed, news)
    with runpod.control() as rp:
        assert [r.id for r in rp.list_registries()] == [created.id]


def test_the_migrations_it_applied_or_refreshed_apply_nothing_again():
    token = "cf-infra-test-token-0123456789"
    with D1StandIn(token) as standin:
        api = CloudflareApi(token, standin.api_base)
        try:
            d1 = (standin, D1Client(api, standin.account_id), D1Client(api, standin.account_id)
                  .create_database("goldgate-staging").uuid)
            migrations = {"0002_tags.sql": "CREATE TABLE tags (name TEXT);\n",
                          "0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n"}
            provider = D1MigrationsProvider()
            news = as_the_engine_sends(d1_props(d1, migrations))
            created = provider.create(news)
            _no_change(provider, created.id, created.outs, news)
            refreshed = provider.read(created.id, as_the_engine_sends(created.outs)).outs
            assert refreshed["recorded"] == ["0001_init.sql", "0002_tags.sql"]
            _no_change(provider, created.id, refreshed, as_the_engine_sends(d1_props(d1, dict(sorted(migrations.items())))))
        finally:
            api.close()
