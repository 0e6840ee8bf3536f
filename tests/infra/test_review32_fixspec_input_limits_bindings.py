"""The API Worker is told the stack's api.max_input_bytes and api.max_input_pixels, under Pulumi mocks, as the
plain_text bindings MAX_INPUT_BYTES and MAX_INPUT_PIXELS: the service reads each of its config keys from the binding
of that name upper-cased (service/cloudflare_entry.py config_from_env), so POST /api/inputs in the cloud refuses
what the stack file says, not the service's built-in defaults whatever the file says."""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi
import pytest
from infra_harness import filled_stack_file, use_cloud
from test_infra_program import _settings

from infra.program import read_config, run
from service.config import ServiceConfig

NAMES = ("MAX_INPUT_BYTES", "MAX_INPUT_PIXELS")


def declared_script(stack: str, api: dict[str, Any], stacks_dir, tmp_path, bundle) -> dict[str, Any]:
    """The stack declared under mocks with `api` set in its spec: the API Worker script's inputs."""
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    doc["api"].update(api)
    cloud = use_cloud(stack, doc)
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        return out.api.script.id.apply(
            lambda _: seen.update(script=cloud.one("workersScript:WorkersScript").inputs))

    program()
    return seen["script"]


def _declare(stack: str, api: dict[str, Any], stacks_dir, tmp_path, bundle) -> dict[str, dict[str, Any]]:
    """The stack declared under mocks with `api` set in its spec: the API Worker's bindings by name."""
    return {b["name"]: b for b in declared_script(stack, api, stacks_dir, tmp_path, bundle)["bindings"]}


def _plain(bindings: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: bindings.get(name) for name in NAMES}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_stack_that_leaves_the_limits_out_binds_the_services_defaults(stack, stacks_dir, tmp_path, bundle):
    assert _plain(_declare(stack, {}, stacks_dir, tmp_path, bundle)) == {
        "MAX_INPUT_BYTES": {"type": "plain_text", "name": "MAX_INPUT_BYTES", "text": str(20 * 1024 * 1024)},
        "MAX_INPUT_PIXELS": {"type": "plain_text", "name": "MAX_INPUT_PIXELS", "text": str(4096 * 4096)}}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_worker_gets_the_stacks_input_limits_as_plain_text_bindings(stack, stacks_dir, tmp_path, bundle):
    bindings = _declare(stack, {"max_input_bytes": 2_000_000, "max_input_pixels": 1024 * 1024}, stacks_dir,
                        tmp_path, bundle)
    assert _plain(bindings) == {
        "MAX_INPUT_BYTES": {"type": "plain_text", "name": "MAX_INPUT_BYTES", "text": "2000000"},
        "MAX_INPUT_PIXELS": {"type": "plain_text", "name": "MAX_INPUT_PIXELS", "text": "1048576"}}
    # Each binding is the service config key the Worker reads it as (its name lower-cased), a value it takes.
    keys = {f.name for f in dataclasses.fields(ServiceConfig)}
    read = {name.lower(): int(bindings[name]["text"]) for name in NAMES}
    assert set(read) <= keys
    config = ServiceConfig.from_mapping({"stack": stack, "api_token": "t" * 32, "webhook_secret": "w" * 32,
                                         "runpod_api_key": "k", "runpod_endpoint_base": "https://e.example/v2/ep",
                                         "public_base_url": "https://api.example", **read})
    assert (config.max_input_bytes, config.max_input_pixels) == (2_000_000, 1024 * 1024)
