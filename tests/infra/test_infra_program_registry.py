"""The Pulumi program's registry credential wiring under mocks (preview=False, Outputs returned and asserted):
an existing id, a goldgate-managed credential from secret config, neither, and every contradictory setup."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from infra_harness import SECRETS, filled_stack_file, is_wire_secret, use_cloud
from test_infra_program import _settings, _traced

from goldgate.errors import SpecError
from goldgate.spec import from_pulumi_config
from infra.policies import check_stacks, identifiers_of
from infra.program import read_config, run

USERNAME = "robot$goldgate-puller"
PASSWORD = "pw-program-test-5e6f7a8b9c0d"
LOGIN = {"goldgate:registryUsername": USERNAME, "goldgate:registryPassword": PASSWORD}
REGISTRY_ID = "6n2k8v4d"


def spec_doc(stack: str, **endpoint: Any) -> dict[str, Any]:
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    doc["endpoint"].update(endpoint)
    return doc


def deploy(stack: str, cloud: Any, stacks_dir: Path, tmp_path: Path, bundle: Any, check: Any) -> None:
    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        assert "registry_credential_id" in out.exports()
        return pulumi.Output.all(out.endpoint_id, out.registry_credential_id, out.api.script.id,
                                 out.storage.migrations.id).apply(lambda v: _traced(check, *v[:2]))

    program()


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_an_existing_credential_id_goes_straight_onto_the_endpoint(stack, stacks_dir, tmp_path, bundle):
    cloud = use_cloud(stack, spec_doc(stack, registry_credential_id=REGISTRY_ID))

    def check(endpoint_id: str, registry_id: str) -> None:
        endpoint = cloud.one("runpod:ServerlessEndpoint")
        assert endpoint.id == endpoint_id and endpoint.inputs["registry"] == REGISTRY_ID == registry_id
        assert not is_wire_secret(endpoint.wire["registry"])  # an id is not a secret
        assert cloud.by_type("runpod:RegistryCredential") == []  # goldgate does not own it

    deploy(stack, cloud, stacks_dir, tmp_path, bundle, check)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_managed_credential_is_created_from_secrets_and_named_on_the_endpoint(stack, stacks_dir, tmp_path, bundle):
    cloud = use_cloud(stack, spec_doc(stack, manage_registry_credential=True), {**SECRETS, **LOGIN})

    def check(endpoint_id: str, registry_id: str) -> None:
        credential = cloud.one("runpod:RegistryCredential")
        endpoint = cloud.one("runpod:ServerlessEndpoint")
        assert credential.name == f"{stack}-registry" and credential.inputs["name"] == f"goldgate-{stack}-registry"
        assert credential.inputs["api_base"] == "https://api.runpod.io"
        assert registry_id == credential.id and endpoint.inputs["registry"] == credential.id
        # the login reaches the provider, wrapped as a secret on the wire and marked secret in its outputs
        assert credential.inputs["username"] == USERNAME and credential.inputs["password"] == PASSWORD
        for key in ("username", "password", "api_key"):
            assert is_wire_secret(credential.wire[key]), key
        assert {"username", "password", "username_fingerprint", "password_fingerprint"} <= set(
            credential.secret_outputs)
        assert "goldgate:gpu:Endpoint" in credential.parent
        assert credential.protect is False  # even in PROD: a rotation replaces it
        # nowhere in plain text: every value the engine receives unwrapped is free of the login
        for resource in cloud.registered.values():
            for key, value in resource.wire.items():
                if not is_wire_secret(value):
                    text = json.dumps(value, default=str)
                    assert PASSWORD not in text and USERNAME not in text, (resource.name, key)

    deploy(stack, cloud, stacks_dir, tmp_path, bundle, check)


def test_without_a_credential_the_endpoint_declares_none(stacks_dir, tmp_path, bundle):
    cloud = use_cloud("staging", spec_doc("staging"))

    def check(endpoint_id: str, registry_id: str | None) -> None:
        assert registry_id is None and cloud.by_type("runpod:RegistryCredential") == []
        assert "registry" not in cloud.one("runpod:ServerlessEndpoint").inputs  # the provider reads absent as none

    deploy("staging", cloud, stacks_dir, tmp_path, bundle, check)


# ---- contradictory or half-done setups, refused before anything is declared ------------------------


def _refused(stack: str, doc: dict[str, Any], secrets: dict[str, str], *expected: str) -> str:
    use_cloud(stack, doc, secrets)
    with pytest.raises(SpecError) as err:
        read_config(stack)
    message = str(err.value)
    for part in expected:
        assert part in message, message
    assert PASSWORD not in message and USERNAME not in message
    return message


def test_an_id_and_a_managed_login_together_are_refused():
    _refused("prod", spec_doc("prod", registry_credential_id=REGISTRY_ID), {**SECRETS, **LOGIN},
             "registry_credential_id is set and so is goldgate:registryUsername, goldgate:registryPassword",
             "not both")


def test_an_id_and_the_managed_flag_together_are_refused_by_the_spec():
    _refused("prod", spec_doc("prod", registry_credential_id=REGISTRY_ID, manage_registry_credential=True), SECRETS,
             "goldgate:spec.endpoint: registry_credential_id and manage_registry_credential are both set")


@pytest.mark.parametrize("missing", ["goldgate:registryPassword", "goldgate:registryUsername"])
def test_a_managed_credential_without_its_login_names_the_missing_secret(missing):
    login = {k: v for k, v in LOGIN.items() if k != missing}
    _refused("staging", spec_doc("staging", manage_registry_credential=True), {**SECRETS, **login},
             f"{missing} is not set", "pulumi config set --secret")


def test_a_login_nothing_uses_is_refused():
    _refused("staging", spec_doc("staging"), {**SECRETS, **LOGIN},
             "manage_registry_credential is not true, so nothing would use it")


def test_a_password_stored_in_plain_text_is_refused():
    use_cloud("staging", spec_doc("staging", manage_registry_credential=True), {**SECRETS, **LOGIN})
    config = {"goldgate:spec": json.dumps(spec_doc("staging", manage_registry_credential=True)), **SECRETS, **LOGIN}
    pulumi.runtime.set_all_config(config, secret_keys=[*SECRETS, "goldgate:registryUsername"])  # password: plain
    with pytest.raises(SpecError) as err:
        read_config("staging")
    assert "goldgate:registryPassword is stored in plain text" in str(err.value)
    assert "pulumi config set --secret" in str(err.value) and PASSWORD not in str(err.value)


def test_the_component_refuses_a_managed_credential_without_a_login(stacks_dir, tmp_path, bundle):
    use_cloud("staging", spec_doc("staging", manage_registry_credential=True), {**SECRETS, **LOGIN})
    spec, secrets, _ = read_config("staging")
    bare = type(secrets)(secrets.runpod_api_key, secrets.webhook_secret, secrets.api_token,
                         secrets.cloudflare_api_token)
    with pytest.raises(SpecError, match="manage_registry_credential needs the registry login"):
        run(spec, bare, _settings(stacks_dir, tmp_path), bundle)


# ---- guardrails -----------------------------------------------------------------------------------


def test_managed_credential_names_are_per_stack_and_an_external_id_may_be_shared():
    staging = from_pulumi_config("staging", spec_doc("staging", registry_credential_id=REGISTRY_ID))
    prod = from_pulumi_config("prod", spec_doc("prod", registry_credential_id=REGISTRY_ID))
    assert identifiers_of(staging)["registry_credential name"] == "goldgate-staging-registry"
    assert identifiers_of(prod)["registry_credential name"] == "goldgate-prod-registry"
    # One pull-only login, managed outside goldgate and never changed by it, may serve both stacks.
    check_stacks(prod, [staging])
