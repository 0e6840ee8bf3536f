"""Every setting of a cloud stack reaches what `pulumi up` declares: each StackSpec field, changed alone (or with
the one field it needs), changes exactly the resource inputs named here, the program run twice under Pulumi's mocks.

The test is parametrised over every leaf field of StackSpec itself, so a field added to goldgate/spec.py fails here
until it is wired into infra/ and given a case below, or named in NOT_DECLARED with the reason no cloud resource
carries it: a setting the cloud silently ignores is one the operator believes in and does not have."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from infra_harness import SECRETS, digest_ref, filled_stack_file, use_cloud
from test_infra_program import _settings
from test_infra_program_changes import _set, declared, declared_once

from goldgate.errors import SpecError
from goldgate.spec import StackSpec
from infra.program import read_config, run
from infra.worker_bundle import WorkerBundle

ENDPOINT = "runpod:ServerlessEndpoint"
SCRIPT = "workersScript:WorkersScript"
BUCKET = "r2Bucket:R2Bucket"
LIFECYCLE = "r2BucketLifecycle:R2BucketLifecycle"
TOKEN = "apiToken:ApiToken"
D1 = "d1Database:D1Database"
MIGRATIONS = "cloudflare:D1Migrations"
DRAIN = "runpod:DrainCheck"
SUBDOMAIN = "workersScriptSubdomain:WorkersScriptSubdomain"
ZONE = "0123456789abcdef0123456789abcdef"
OTHER_ZONE = "fedcba9876543210fedcba9876543210"
RETENTION = {"keep_days": 30, "cron": "30 3 * * *"}
LOGIN = {"goldgate:registryUsername": "robot$goldgate-puller", "goldgate:registryPassword": "pw-every-field-5e6f7a8b9c"}
REFUSED = "refused before anything is declared"

RELEASE_GATE = "a release gate the release commands read from the stack file (goldgate/release/gate.py), no resource"
# Fields of StackSpec that no cloud resource carries, and why.
NOT_DECLARED = {
    "name": "the Pulumi stack's own name, not a field of the file (every resource's logical name carries it)",
    "target": "which file the spec was read from (cloud: stacks/Pulumi.<stack>.yaml), not a field of the file",
    "thresholds.golden_mean_latency_s": RELEASE_GATE,
    "thresholds.golden_case_latency_s": RELEASE_GATE,
    "thresholds.error_rate": RELEASE_GATE,
    "thresholds.report_max_age_s": RELEASE_GATE,
}
# The embedded target's own block: a cloud stack file refuses it (an unknown field of goldgate:spec).
LOCAL_ONLY = "local."


@dataclass(frozen=True)
class Case:
    """`change` (dotted path -> value; None removes the field) applied to the stack file after `base` was applied to
    both runs; `expected`: per resource type, the inputs that change (`bindings.NAME` for one Worker binding,
    `env.KEY` for one worker variable, `protect`/`retain_on_delete`, `+`/`-` for a resource added/removed)."""

    change: dict[str, Any]
    expected: dict[str, list[str]] | str
    base: dict[str, Any] = field(default_factory=dict)
    stack: str = "staging"
    secrets_after: Mapping[str, str] = field(default_factory=dict)


CANARY = {"endpoint.name": "goldgate-canary", "storage.bucket": "goldgate-canary-results",
          "database.name": "goldgate-canary", "api.script_name": "goldgate-api-canary",
          "api.public_base_url": "https://goldgate-api-canary.example.workers.dev"}

CASES: dict[str, Case] = {
    # role decides protection; a stack named staging or prod must have that role, so another stack shows it.
    "role": Case({"role": "prod"}, {
        BUCKET: ["protect", "retain_on_delete"], D1: ["protect", "retain_on_delete"], ENDPOINT: ["protect"]},
        base=CANARY, stack="canary"),
    "workflow_version": Case({"workflow_version": "2026.12.0"}, {
        ENDPOINT: ["env.WORKFLOW_VERSION"], SCRIPT: ["bindings.WORKFLOW_VERSION"]}),
    "image": Case({"image": digest_ref("release-2")}, {
        ENDPOINT: ["env.WORKER_IMAGE_TAG", "image"], SCRIPT: ["bindings.WORKER_IMAGE_TAG"]}),
    "prices_per_gpu_second": Case({"prices_per_gpu_second": {"NVIDIA GeForce RTX 4090": 0.0004}}, {
        SCRIPT: ["bindings.PRICE_PER_GPU_SECOND"]}),
    # -- endpoint ------------------------------------------------------------------------------------------------
    "endpoint.name": Case({"endpoint.name": "goldgate-staging-two"}, {ENDPOINT: ["name"]}),
    "endpoint.gpu_pools": Case({"endpoint.gpu_pools": ["ADA_24", "AMPERE_48"]}, {ENDPOINT: ["gpu_pools"]}),
    # a price names the priced card, so the base prices none
    "endpoint.cost_gpu_type": Case({"endpoint.cost_gpu_type": "NVIDIA RTX A5000"}, {
        ENDPOINT: ["env.GPU_TYPE"], SCRIPT: ["bindings.GPU_TYPE"]}, base={"prices_per_gpu_second": None}),
    "endpoint.gpu_count": Case({"endpoint.gpu_count": 2}, {ENDPOINT: ["gpu_count"], SCRIPT: ["bindings.GPU_COUNT"]}),
    "endpoint.workers_min": Case({"endpoint.workers_min": 1}, {ENDPOINT: ["workers_min"]}),
    "endpoint.workers_max": Case({"endpoint.workers_max": 5}, {ENDPOINT: ["workers_max"]}),
    "endpoint.idle_timeout_s": Case({"endpoint.idle_timeout_s": 300}, {ENDPOINT: ["idle_timeout_s"]}),
    # QUEUE_DELAY is the one deployable value: the other is refused by name, never dropped.
    "endpoint.scaler_type": Case({"endpoint.scaler_type": "REQUEST_COUNT"}, REFUSED),
    "endpoint.scaler_value": Case({"endpoint.scaler_value": 9}, {ENDPOINT: ["scaler_value"]}),
    "endpoint.flashboot": Case({"endpoint.flashboot": False}, {ENDPOINT: ["flashboot"]}),
    "endpoint.execution_timeout_ms": Case({"endpoint.execution_timeout_ms": 300_000}, {
        ENDPOINT: ["env.COMFY_JOB_TIMEOUT_S", "env.COMFY_READY_TIMEOUT_S", "execution_timeout_ms"],
        SCRIPT: ["bindings.EXECUTION_TIMEOUT_MS"]}),
    "endpoint.ttl_ms": Case({"endpoint.ttl_ms": 7_200_000}, {SCRIPT: ["bindings.TTL_MS"]}),
    "endpoint.network_volume_id": Case({"endpoint.network_volume_id": "vol123"}, {ENDPOINT: ["network_volume_ids"]}),
    "endpoint.data_center_ids": Case({"endpoint.data_center_ids": ["US-TX-3"]}, {ENDPOINT: ["data_center_ids"]}),
    "endpoint.env": Case({"endpoint.env": {"COMFY_LOG_LEVEL": "debug"}}, {ENDPOINT: ["env.COMFY_LOG_LEVEL"]}),
    "endpoint.registry_credential_id": Case({"endpoint.registry_credential_id": "6n2k8v4d"}, {ENDPOINT: ["registry"]}),
    "endpoint.manage_registry_credential": Case({"endpoint.manage_registry_credential": True}, {
        "runpod:RegistryCredential": ["+"], ENDPOINT: ["registry"]}, secrets_after=LOGIN),
    # -- storage -------------------------------------------------------------------------------------------------
    "storage.bucket": Case({"storage.bucket": "goldgate-staging-two"}, {
        BUCKET: ["name"], LIFECYCLE: ["bucketName"], TOKEN: ["name", "policies"], ENDPOINT: ["env.R2_BUCKET"],
        SCRIPT: ["bindings.RESULTS"]}),
    "storage.location": Case({"storage.location": "weur"}, {BUCKET: ["location"]}),
    "storage.jurisdiction": Case({"storage.jurisdiction": "eu"}, {
        BUCKET: ["jurisdiction"], LIFECYCLE: ["jurisdiction"], TOKEN: ["policies"], ENDPOINT: ["env.R2_ENDPOINT_URL"],
        SCRIPT: ["bindings.RESULTS"]}),
    "storage.result_ttl_days": Case({"storage.result_ttl_days": 14}, {LIFECYCLE: ["rules"],
                                                                  SCRIPT: ["bindings.RESULT_TTL_DAYS"]}),
    "storage.backup_retention_days": Case({"storage.backup_retention_days": 30}, {LIFECYCLE: ["rules"]}),
    # the DR drill's bucket: its own lifecycle and token, and nothing the workers or the API Worker are given
    "storage.backup_bucket": Case({"storage.backup_bucket": "goldgate-staging-dr"}, {
        BUCKET: ["name"], LIFECYCLE: ["bucketName"], TOKEN: ["name", "policies"]}),
    # -- database ------------------------------------------------------------------------------------------------
    "database.name": Case({"database.name": "goldgate-staging-two"}, {D1: ["name"]}),
    "database.location_hint": Case({"database.location_hint": "weur"}, {D1: ["primaryLocationHint"]}),
    "database.protect": Case({"database.protect": True}, {D1: ["protect", "retain_on_delete"]}),
    "database.retention.keep_days": Case({"database.retention.keep_days": 60}, {
        SCRIPT: ["bindings.RETENTION_KEEP_DAYS"]}, base={"database.retention": RETENTION}),
    "database.retention.metrics_keep_days": Case({"database.retention.metrics_keep_days": 365}, {
        SCRIPT: ["bindings.RETENTION_METRICS_KEEP_DAYS"]}, base={"database.retention": RETENTION}),
    "database.retention.cron": Case({"database.retention.cron": "0 4 * * *"}, {
        "workersCronTrigger:WorkersCronTrigger": ["schedules"]}, base={"database.retention": RETENTION}),
    # -- api -----------------------------------------------------------------------------------------------------
    # workers.dev serves a Worker only at <script name>.<subdomain>.workers.dev: the URL follows the name
    "api.script_name": Case({"api.script_name": "goldgate-api-staging-two",
                             "api.public_base_url": "https://goldgate-api-staging-two.example.workers.dev"}, {
        # the rate limit bindings' namespace ids are derived from the script name (a namespace is the account's)
        SCRIPT: ["bindings.PUBLIC_BASE_URL", "bindings.RATE_LIMIT_CREATE", "bindings.RATE_LIMIT_INPUTS",
                 "scriptName"], SUBDOMAIN: ["scriptName"]}),
    "api.public_base_url": Case({"api.public_base_url": "https://goldgate-api-staging.other.workers.dev"}, {
        SCRIPT: ["bindings.PUBLIC_BASE_URL"]}),
    "api.route": Case({"api.route": "api-staging.example.com/*", "api.zone_id": ZONE}, {
        "workersRoute:WorkersRoute": ["+"]}),
    "api.zone_id": Case({"api.zone_id": OTHER_ZONE}, {"workersRoute:WorkersRoute": ["zoneId"]},
                        base={"api.route": "api-staging.example.com/*", "api.zone_id": ZONE}),
    # the docs: a custom domain replaces the workers.dev URL (its line deleted)
    "api.custom_domain": Case({"api.custom_domain": "api-staging.example.com", "api.zone_id": ZONE,
                               "api.public_base_url": None}, {
        "workersCustomDomain:WorkersCustomDomain": ["+"], SUBDOMAIN: ["enabled"],
        SCRIPT: ["bindings.PUBLIC_BASE_URL"]}),
    # workers.dev kept beside the custom domain for the switch (the jobs sent before hold URLs there)
    "api.keep_workers_dev": Case({"api.keep_workers_dev": True}, {SUBDOMAIN: ["enabled"]}, base={
        "api.custom_domain": "api-staging.example.com", "api.zone_id": ZONE, "api.public_base_url": None}),
    "api.max_body_bytes": Case({"api.max_body_bytes": 100_000}, {SCRIPT: ["bindings.MAX_BODY_BYTES"]}),
    "api.signed_url_ttl_s": Case({"api.signed_url_ttl_s": 600}, {SCRIPT: ["bindings.SIGNED_URL_TTL_S"]}),
    "api.max_jobs_in_flight": Case({"api.max_jobs_in_flight": 50}, {SCRIPT: ["bindings.MAX_JOBS_IN_FLIGHT"]}),
    "api.max_input_bytes": Case({"api.max_input_bytes": 1_048_576}, {SCRIPT: ["bindings.MAX_INPUT_BYTES"]}),
    "api.max_input_pixels": Case({"api.max_input_pixels": 1024 * 1024}, {SCRIPT: ["bindings.MAX_INPUT_PIXELS"]}),
    "api.rate_limits.create_per_minute": Case({"api.rate_limits": {"create_per_minute": 60}}, {
        SCRIPT: ["bindings.CREATE_RATE_LIMIT_PER_MINUTE", "bindings.RATE_LIMIT_CREATE"]}),
    "api.rate_limits.inputs_per_minute": Case({"api.rate_limits": {"inputs_per_minute": 12}}, {
        SCRIPT: ["bindings.INPUTS_RATE_LIMIT_PER_MINUTE", "bindings.RATE_LIMIT_INPUTS"]}),
    "api.compatibility_date": Case({"api.compatibility_date": "2025-10-01"}, {SCRIPT: ["compatibilityDate"]}),
    "api.smart_placement": Case({"api.smart_placement": False}, {SCRIPT: ["placement"]}),
    "api.daily_spend_limit_usd": Case({"api.daily_spend_limit_usd": 250}, {SCRIPT: ["bindings.DAILY_SPEND_LIMIT_USD"]}),
    "api.client_daily_spend_limit_usd": Case({"api.client_daily_spend_limit_usd": 50}, {
        SCRIPT: ["bindings.CLIENT_DAILY_SPEND_LIMIT_USD"]}),
    # -- cloud ---------------------------------------------------------------------------------------------------
    "cloud.cloudflare_account_id": Case({"cloud.cloudflare_account_id": "f" * 32}, {
        BUCKET: ["accountId"], LIFECYCLE: ["accountId"], TOKEN: ["policies"], D1: ["accountId"],
        MIGRATIONS: ["account_id"], SCRIPT: ["accountId"], SUBDOMAIN: ["accountId"], ENDPOINT: ["env.R2_ENDPOINT_URL"]}),
    "cloud.runpod_api_base": Case({"cloud.runpod_api_base": "https://rest.runpod.example.com"}, {
        ENDPOINT: ["api_base"], DRAIN: ["api_base"]}),
    "cloud.runpod_endpoint_base": Case({"cloud.runpod_endpoint_base": "https://queue.runpod.example.com/v2"}, {
        SCRIPT: ["bindings.RUNPOD_ENDPOINT_BASE"], DRAIN: ["endpoint_base"]}),
}


def _dataclass_in(hint: Any) -> type | None:
    """The dataclass a field's type names (`X | None` too), or None for a leaf."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    return next((t for t in options if isinstance(t, type) and dataclasses.is_dataclass(t)), None)


def leaf_fields(cls: type = StackSpec, prefix: str = "") -> Iterator[str]:
    """Every leaf field of StackSpec as its dotted path in a stack file (`database.retention.cron`)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        nested = _dataclass_in(hints[f.name])
        if nested is None:
            yield prefix + f.name
        else:
            yield from leaf_fields(nested, f"{prefix}{f.name}.")


CLOUD_FIELDS = sorted(f for f in leaf_fields() if f not in NOT_DECLARED and not f.startswith(LOCAL_ONLY))


def _expand(inputs: dict[str, Any]) -> dict[str, Any]:
    """A resource's inputs with the Worker's bindings and the worker's env split into one entry each."""
    out = dict(inputs)
    bindings = out.pop("bindings", None)
    for b in bindings or []:
        out[f"bindings.{b['name']}"] = b
    env = out.pop("env", None)
    for key, value in (env or {}).items():
        out[f"env.{key}"] = value
    return out


def changes(before: dict, after: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key in set(before) | set(after):
        kind = key[0]
        if key not in before or key not in after:
            out[kind] = ["+" if key not in before else "-"]
            continue
        (old, old_protect, old_retain), (new, new_protect, new_retain) = before[key], after[key]
        old, new = _expand(old), _expand(new)
        found = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        found += ["protect"] * (old_protect != new_protect) + ["retain_on_delete"] * (old_retain != new_retain)
        if found:
            out[kind] = found
    return out


def _apply(doc: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    for path, value in settings.items():
        doc = _set(doc, path, value) if value is not None or _has(doc, path) else doc
    return doc


def _has(doc: dict[str, Any], path: str) -> bool:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_every_field_is_either_wired_or_named_as_one_no_resource_carries():
    fields = set(leaf_fields())
    stale = (set(CASES) | set(NOT_DECLARED)) - fields
    assert not stale, f"cases for fields StackSpec no longer has: {sorted(stale)}"
    assert not set(CASES) & set(NOT_DECLARED)
    assert "database.retention.cron" in fields and "local.faults.seed" in fields  # nested ones are walked


@pytest.mark.parametrize("path", CLOUD_FIELDS)
def test_a_field_changed_alone_changes_what_the_program_declares(path: str, stacks_dir: Path, tmp_path: Path,
                                                                  bundle: WorkerBundle) -> None:
    case = CASES.get(path)
    assert case is not None, (f"goldgate:spec.{path} has no case here: wire it into infra/ and add the inputs it "
                              "changes to CASES, or name it in NOT_DECLARED with the reason no cloud resource "
                              "carries it")
    doc = _apply(filled_stack_file("staging")["config"]["goldgate:spec"], case.base)
    changed = _apply(doc, case.change)
    if case.expected == REFUSED:
        use_cloud(case.stack, changed)
        with pytest.raises(SpecError, match=path.rsplit(".", 1)[-1]):
            spec, secrets, _ = read_config(case.stack)
            run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        return
    before = declared_once(case.stack, doc, SECRETS, stacks_dir, tmp_path, bundle)
    after = declared(case.stack, changed, {**SECRETS, **case.secrets_after}, stacks_dir, tmp_path, bundle)
    assert changes(before, after) == case.expected
