"""What a change to the stack file or a secret makes the program declare differently, resource by resource: the
program run twice under mocks (before, after) and every resource's inputs compared. A promotion, a rollback or
a retune must touch the endpoint (and the Worker's settings) only: never the D1 database, the bucket or any
resource's name, so no `pulumi up` replaces or deletes where the data lives."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from infra_harness import SECRETS, digest_ref, filled_stack_file, use_cloud
from test_infra_program import _settings

from infra.program import read_config, run
from infra.worker_bundle import WorkerBundle

STACKS = ("staging", "prod")
ENDPOINT = "runpod:ServerlessEndpoint"
SCRIPT = "workersScript:WorkersScript"


def declared(stack: str, doc: dict[str, Any], secrets: dict[str, str], stacks_dir: Path, tmp_path: Path,
             bundle: WorkerBundle) -> dict[tuple[str, str], tuple[dict[str, Any], bool, bool]]:
    """(type suffix, logical name) -> (inputs with every random id replaced by a stable token, protect, retain)."""
    cloud = use_cloud(stack, doc, secrets)

    @pulumi.runtime.test
    def program():
        spec, stack_secrets, _ = read_config(stack)
        out = run(spec, stack_secrets, _settings(stacks_dir, tmp_path), bundle)
        return pulumi.Output.all(out.api.script.id, out.storage.migrations.id, out.storage.lifecycle.id,
                                 out.endpoint_base).apply(lambda _: None)

    program()
    ids = {r.id: f"<id of {r.name}>" for r in cloud.registered.values() if r.id}
    found = {}
    for r in cloud.registered.values():
        text = json.dumps(r.inputs, sort_keys=True)
        for rid, token in ids.items():
            text = text.replace(rid, token)
        found[(r.type.rsplit("/", 1)[-1], r.name)] = (json.loads(text), r.protect, r.retain_on_delete)
    return found


_DECLARED: dict[tuple[str, str, str], dict[tuple[str, str], tuple[dict[str, Any], bool, bool]]] = {}


def declared_once(stack: str, doc: dict[str, Any], secrets: dict[str, str], stacks_dir: Path, tmp_path: Path,
                  bundle: WorkerBundle) -> dict[tuple[str, str], tuple[dict[str, Any], bool, bool]]:
    """`declared` for an unchanged stack file, run under the mocks once per (stack, file, secrets) in a
    process and handed out as a copy: the program is deterministic once ids are tokens (no input carries a
    temp path, and every test's bundle and stacks dir hold the same files), so a "before" run repeated per
    test found nothing new."""
    key = (stack, json.dumps(doc, sort_keys=True), json.dumps(secrets, sort_keys=True))
    if key not in _DECLARED:
        _DECLARED[key] = declared(stack, doc, secrets, stacks_dir, tmp_path, bundle)
    return copy.deepcopy(_DECLARED[key])


def changes(before: dict, after: dict) -> dict[str, list[str]]:
    """Per changed resource, the input names that differ; a resource added or removed shows as '+' or '-'."""
    assert set(before) == set(after), ("resources added or removed", set(before) ^ set(after))
    out = {}
    for key, (inputs, protect, retain) in before.items():
        new_inputs, new_protect, new_retain = after[key]
        assert (protect, retain) == (new_protect, new_retain), key
        fields = sorted(k for k in set(inputs) | set(new_inputs) if inputs.get(k) != new_inputs.get(k))
        if fields:
            out[key[0]] = fields
    return out


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node[p]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return doc


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("path", "value", "expected"), [
    # Promotion and rollback: the endpoint's image (and the env naming it), the Worker's WORKER_IMAGE_TAG setting.
    ("image", digest_ref("release-2"), {ENDPOINT: ["env", "image"], SCRIPT: ["bindings"]}),
    ("endpoint.gpu_pools", ["ADA_24", "AMPERE_48"], {ENDPOINT: ["gpu_pools"]}),
    ("endpoint.workers_max", 5, {ENDPOINT: ["workers_max"]}),
    ("endpoint.workers_min", 0, {ENDPOINT: ["workers_min"]}),
    ("endpoint.idle_timeout_s", 300, {ENDPOINT: ["idle_timeout_s"]}),
    ("endpoint.scaler_value", 9, {ENDPOINT: ["scaler_value"]}),
    ("endpoint.env", {"COMFY_LOG_LEVEL": "debug"}, {ENDPOINT: ["env"]}),
    ("endpoint.flashboot", False, {ENDPOINT: ["flashboot"]}),
    # Fields removed from the stack file fall back to defaults that change nothing here.
    ("endpoint.name", None, {}),
    ("api.max_body_bytes", None, {}),
])
def test_a_stack_file_change_touches_only_what_it_names(stack, path, value, expected, stacks_dir, tmp_path, bundle):
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    if path == "endpoint.workers_min" and doc["endpoint"]["workers_min"] == 0:
        value = 1
    before = declared_once(stack, doc, SECRETS, stacks_dir, tmp_path, bundle)
    after = declared(stack, _set(doc, path, value), SECRETS, stacks_dir, tmp_path, bundle)
    assert changes(before, after) == expected


def test_removing_prods_database_protect_line_keeps_it_protected_and_retained(stacks_dir, tmp_path, bundle):
    doc = filled_stack_file("prod")["config"]["goldgate:spec"]
    assert doc["database"]["protect"] is True
    before = declared_once("prod", doc, SECRETS, stacks_dir, tmp_path, bundle)
    after = declared("prod", _set(doc, "database.protect", None), SECRETS, stacks_dir, tmp_path, bundle)
    assert changes(before, after) == {}  # protect and retainOnDelete compared too
    assert after[("d1Database:D1Database", "prod-db")][1:] == (True, True)


@pytest.mark.parametrize(("key", "expected"), [
    ("goldgate:apiToken", {SCRIPT: ["bindings"]}),
    ("goldgate:webhookSecret", {SCRIPT: ["bindings"]}),
    # the drain check reads /health with the key when a destroy deletes it
    ("goldgate:runpodApiKey", {ENDPOINT: ["api_key"], SCRIPT: ["bindings"], "runpod:DrainCheck": ["api_key"]}),
    ("goldgate:cloudflareApiToken", {"pulumi:providers:cloudflare": ["apiToken"], "cloudflare:D1Migrations": ["api_token"]}),
])
def test_a_rotated_secret_changes_only_the_inputs_that_carry_it(key, expected, stacks_dir, tmp_path, bundle):
    doc = filled_stack_file("prod")["config"]["goldgate:spec"]
    before = declared_once("prod", doc, SECRETS, stacks_dir, tmp_path, bundle)
    after = declared("prod", doc, {**SECRETS, key: SECRETS[key] + "-rotated-0123456789"}, stacks_dir, tmp_path,
                     bundle)
    assert changes(before, after) == expected
