"""StackSpec's registry credential: an existing id or a goldgate-managed credential, never both, cloud only."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError

DIGEST = "registry.example.com/your-org/goldgate-worker@sha256:" + "a" * 64


def cloud_doc(stack: str = "staging", **endpoint: Any) -> dict[str, Any]:
    doc = yaml.safe_load((specs.STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]["goldgate:spec"]
    doc = copy.deepcopy(doc)
    doc["image"] = DIGEST
    doc["endpoint"].update(endpoint)
    return doc


def test_no_registry_setting_pulls_anonymously() -> None:
    for stack in ("staging", "prod"):
        ep = specs.from_pulumi_config(stack, cloud_doc(stack)).endpoint
        assert ep.registry_credential_id is None and ep.manage_registry_credential is False
        assert not ep.pulls_privately


@pytest.mark.parametrize("registry_id", ["6n2k8v4d", "reg_abc", "30zmvf89kd", "A-1", "x" * 64])
def test_an_existing_credential_id_is_kept(registry_id: str) -> None:
    ep = specs.from_pulumi_config("prod", cloud_doc("prod", registry_credential_id=registry_id)).endpoint
    assert ep.registry_credential_id == registry_id and ep.pulls_privately and not ep.manage_registry_credential


def test_a_managed_credential_is_a_flag_not_a_secret_in_the_spec() -> None:
    ep = specs.from_pulumi_config("staging", cloud_doc(manage_registry_credential=True)).endpoint
    assert ep.manage_registry_credential and ep.registry_credential_id is None and ep.pulls_privately


@pytest.mark.parametrize("registry_id", [
    "registry.example.com",                # a host, not a credential id
    "registry.example.com/your-org",       # a repository
    "your-org/robot",                      # a user name with a slash
    "6n2k 8v4d",                           # whitespace
    "-leading-dash",
    "x" * 65,                              # longer than any id
    "../6n2k8v4d",                         # a path
    "<RUNPOD_REGISTRY_ID>",                # a placeholder left in
])
def test_a_malformed_credential_id_is_refused_by_name(registry_id: str) -> None:
    with pytest.raises(SpecError) as err:
        specs.from_pulumi_config("staging", cloud_doc(registry_credential_id=registry_id))
    message = str(err.value)
    assert "goldgate:spec.endpoint.registry_credential_id" in message
    assert "is not a RunPod registry credential id" in message and "GET /v2/registries" in message


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("registry_credential_id", 12345678, "expected a non-empty string"),
    ("registry_credential_id", "", "expected a non-empty string"),
    ("manage_registry_credential", "yes", "expected true or false"),
])
def test_a_wrongly_typed_registry_field_is_refused_by_name(field: str, value: Any, expected: str) -> None:
    with pytest.raises(SpecError, match=f"goldgate:spec.endpoint.{field}: {expected}"):
        specs.from_pulumi_config("staging", cloud_doc(**{field: value}))


def test_both_ways_at_once_is_a_clear_error() -> None:
    with pytest.raises(SpecError) as err:
        specs.from_pulumi_config("prod", cloud_doc("prod", registry_credential_id="6n2k8v4d",
                                                   manage_registry_credential=True))
    assert "registry_credential_id and manage_registry_credential are both set" in str(err.value)
    assert "goldgate:spec.endpoint" in str(err.value)


def test_managed_false_beside_an_id_is_fine() -> None:
    ep = specs.from_pulumi_config("staging", cloud_doc(registry_credential_id="6n2k8v4d",
                                                       manage_registry_credential=False)).endpoint
    assert ep.registry_credential_id == "6n2k8v4d"


@pytest.mark.parametrize("endpoint", [{"registry_credential_id": "6n2k8v4d"}, {"manage_registry_credential": True}])
def test_a_local_stack_refuses_registry_settings(tmp_path, endpoint: dict[str, Any]) -> None:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["staging"]["endpoint"].update(endpoint)
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match="stacks.staging.endpoint: registry_credential_id and "
                                        "manage_registry_credential are for cloud stacks"):
        specs.load_local("staging", path)


def test_a_misspelt_registry_field_is_an_unknown_field() -> None:
    with pytest.raises(SpecError, match="unknown field\\(s\\) registry_id"):
        specs.from_pulumi_config("staging", cloud_doc(registry_id="6n2k8v4d"))
