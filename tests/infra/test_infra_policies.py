"""Each guardrail, called directly: the plain checks and the pulumi_policy objects' validate, passing and failing."""

from __future__ import annotations

import dataclasses
import inspect
import runpy
from pathlib import Path
from typing import Any

import pulumi_policy
import pytest
import yaml
from infra_harness import filled_stack_file
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from goldgate.spec import from_pulumi_config
from infra import policies
from infra.policies import (
    D1_DATABASE_TYPE,
    IMAGE_PINNED,
    POLICIES,
    PROD_D1_PROTECTED,
    PROD_NO_NETWORK_VOLUME,
    RUNPOD_ENDPOINT_TYPE,
    STACKS_SHARE_NOTHING,
    GuardrailError,
    check_stacks,
)

DIGEST = "registry.example.com/example/goldgate-worker@sha256:" + "a" * 64


def urn(stack: str, kind: str, name: str) -> str:
    return f"urn:pulumi:{stack}::goldgate::{kind}::{name}"


def opts(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def resource_args(stack: str, kind: str, props: dict[str, Any], stacks_dir: Path,
                  protect: bool = False) -> ResourceValidationArgs:
    return ResourceValidationArgs(kind, props, urn(stack, kind, f"{stack}-x"), f"{stack}-x", opts(protect), None,
                                  {"stacksDir": str(stacks_dir)})


def violations(policy: Any, args: Any) -> list[str]:
    found: list[str] = []
    policy.validate(args, lambda message, _urn=None: found.append(message))
    return found


def spec(stack: str, **endpoint: Any) -> Any:
    s = from_pulumi_config(stack, filled_stack_file(stack)["config"]["goldgate:spec"])
    return dataclasses.replace(s, endpoint=dataclasses.replace(s.endpoint, **endpoint)) if endpoint else s


# --- the plain functions ------------------------------------------------------------------------

def test_image_must_be_pinned_by_digest():
    assert policies.image_violations("prod", DIGEST) == []
    for bad in ("registry.example.com/example/goldgate-worker:latest", "registry.example.com/example/goldgate-worker@sha256:abc", None, ""):
        (message,) = policies.image_violations("prod", bad)
        assert "not pinned by digest" in message and "repo@sha256:<64 hex>" in message


def test_prod_may_not_attach_a_network_volume_but_staging_may():
    assert policies.network_volume_violations("prod", "prod", []) == []
    assert policies.network_volume_violations("staging", "staging", ["vol_1"]) == []
    (message,) = policies.network_volume_violations("prod", "prod", ["vol_1"])
    assert "vol_1" in message and "PROD must not use a network volume" in message


def test_prod_d1_must_be_protected():
    assert policies.database_protection_violations("prod", "prod", True) == []
    assert policies.database_protection_violations("staging", "staging", False) == []
    (message,) = policies.database_protection_violations("prod", "prod", False)
    assert "database.protect: true" in message


def test_stacks_may_not_share_a_name_or_id():
    staging, prod = spec("staging"), spec("prod")
    assert policies.shared_identifier_violations([staging, prod]) == []
    clash = dataclasses.replace(staging, database=dataclasses.replace(staging.database, name="goldgate-prod"))
    (message,) = policies.shared_identifier_violations([clash, prod])
    assert "'goldgate-prod'" in message and "prod" in message and "staging" in message
    vol = spec("staging", network_volume_id="vol_shared")
    # A volume id is an id too; PROD cannot have one, so compare two STAGING-like stacks.
    other = dataclasses.replace(spec("staging", network_volume_id="vol_shared"), name="staging2")
    assert any("vol_shared" in m for m in policies.shared_identifier_violations([vol, other]))


def test_check_stacks_lists_every_violation_at_once():
    check_stacks(spec("prod"), [spec("staging")])
    bad = dataclasses.replace(spec("prod", network_volume_id="vol_1"), image="repo:tag",
                              database=dataclasses.replace(spec("prod").database, protect=False))
    with pytest.raises(GuardrailError) as err:
        check_stacks(bad, [spec("staging")])
    text = str(err.value)
    assert "not pinned by digest" in text and "network volume vol_1" in text
    # is_prod forces protection in the program, so an unprotected flag alone is not a violation here
    assert "guardrails refuse this deployment" in text


# --- the pulumi_policy objects ------------------------------------------------------------------

def test_policy_objects_are_mandatory_and_listed():
    assert {p.name for p in POLICIES} == {"image-digest-pinned", "prod-no-network-volume", "prod-d1-protected",
                                          "prod-r2-protected", "stacks-share-nothing"}
    assert all(p.enforcement_level.value == "mandatory" for p in POLICIES)


def test_image_policy(stacks_dir):
    ok = resource_args("staging", RUNPOD_ENDPOINT_TYPE, {"image": DIGEST}, stacks_dir)
    assert violations(IMAGE_PINNED, ok) == []
    bad = resource_args("staging", RUNPOD_ENDPOINT_TYPE, {"image": "registry.example.com/example/worker:v1"}, stacks_dir)
    assert "not pinned by digest" in violations(IMAGE_PINNED, bad)[0]
    other = resource_args("staging", "cloudflare:index/r2Bucket:R2Bucket", {"image": "x:y"}, stacks_dir)
    assert violations(IMAGE_PINNED, other) == []


def test_network_volume_policy(stacks_dir):
    prod_ok = resource_args("prod", RUNPOD_ENDPOINT_TYPE, {"network_volume_ids": []}, stacks_dir)
    assert violations(PROD_NO_NETWORK_VOLUME, prod_ok) == []
    staging_vol = resource_args("staging", RUNPOD_ENDPOINT_TYPE, {"network_volume_ids": ["vol_1"]}, stacks_dir)
    assert violations(PROD_NO_NETWORK_VOLUME, staging_vol) == []
    prod_vol = resource_args("prod", RUNPOD_ENDPOINT_TYPE, {"network_volume_ids": ["vol_1"]}, stacks_dir)
    assert "PROD must not use a network volume" in violations(PROD_NO_NETWORK_VOLUME, prod_vol)[0]
    # A stack without a readable stack file is treated as PROD: fail safe.
    unknown = resource_args("mystery", RUNPOD_ENDPOINT_TYPE, {"network_volume_ids": ["vol_1"]}, stacks_dir)
    assert violations(PROD_NO_NETWORK_VOLUME, unknown)


def test_d1_protection_policy(stacks_dir):
    assert violations(PROD_D1_PROTECTED, resource_args("prod", D1_DATABASE_TYPE, {}, stacks_dir, protect=True)) == []
    assert violations(PROD_D1_PROTECTED, resource_args("staging", D1_DATABASE_TYPE, {}, stacks_dir)) == []
    (message,) = violations(PROD_D1_PROTECTED, resource_args("prod", D1_DATABASE_TYPE, {}, stacks_dir))
    assert "not protected" in message


def _stack_args(stack: str, resources: list[tuple[str, dict[str, Any]]], stacks_dir: Path) -> StackValidationArgs:
    policy_resources = [PolicyResource(kind, props, urn(stack, kind, f"{stack}-{i}"), f"{stack}-{i}", opts(), None,
                                       None, [], {}) for i, (kind, props) in enumerate(resources)]
    return StackValidationArgs(policy_resources, {"stacksDir": str(stacks_dir)})


def test_share_nothing_policy(stacks_dir):
    own = [("cloudflare:index/r2Bucket:R2Bucket", {"name": "goldgate-staging-results"}),
           (D1_DATABASE_TYPE, {"name": "goldgate-staging"}),
           ("cloudflare:index/workersScript:WorkersScript", {"scriptName": "goldgate-api-staging"})]
    assert violations(STACKS_SHARE_NOTHING, _stack_args("staging", own, stacks_dir)) == []
    stolen = [*own, (D1_DATABASE_TYPE, {"name": "goldgate-prod"})]
    (message,) = violations(STACKS_SHARE_NOTHING, _stack_args("staging", stolen, stacks_dir))
    assert "'goldgate-prod'" in message and "stack prod claims" in message


def test_share_nothing_policy_reads_both_stack_files(stacks_dir):
    doc = yaml.safe_load((stacks_dir / "Pulumi.staging.yaml").read_text())
    doc["config"]["goldgate:spec"]["api"]["script_name"] = "goldgate-api-prod"
    (stacks_dir / "Pulumi.staging.yaml").write_text(yaml.safe_dump(doc))
    found = violations(STACKS_SHARE_NOTHING, _stack_args("staging", [], stacks_dir))
    assert any("'goldgate-api-prod'" in m for m in found)


def test_committed_stack_files_pass_the_guardrails():
    # The committed files hold placeholders (refused by the program) but already satisfy every guardrail.
    assert policies.shared_identifier_violations(policies.load_cloud_stacks().values()) == []
    for s in policies.load_cloud_stacks().values():
        assert policies.network_volume_violations(s.name, s.role, [s.endpoint.network_volume_id or ""]) == []
        assert policies.database_protection_violations(s.name, s.role, s.database.protect) == []


def test_policy_pack_entry_builds_the_pack_from_these_policies(monkeypatch):
    # The real PolicyPack starts the policy server, so a recorder stands in for it while the entry file runs.
    built: list[dict[str, Any]] = []
    signature = inspect.signature(pulumi_policy.PolicyPack)
    monkeypatch.setattr(pulumi_policy, "PolicyPack",
                        lambda *a, **kw: built.append(signature.bind(*a, **kw).arguments))
    entry = Path(policies.__file__).with_name("policy_pack") / "__main__.py"
    runpy.run_path(str(entry), run_name="__main__")
    [pack] = built
    assert pack["policies"] is POLICIES
    assert pack["name"] == "goldgate-guardrails"
    assert pack["enforcement_level"] is pulumi_policy.EnforcementLevel.MANDATORY
    assert yaml.safe_load(entry.with_name("PulumiPolicy.yaml").read_text())["runtime"]["name"] == "python"
