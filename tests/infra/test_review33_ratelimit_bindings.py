"""The API Worker's rate limits, under Pulumi mocks: two Workers Rate Limiting bindings (`type: ratelimit`),
RATE_LIMIT_CREATE and RATE_LIMIT_INPUTS, each `simple: {limit: <the stack's api.rate_limits>, period: 60}` under a
namespace id of its own. A namespace is the account's: two Workers binding one id share its counts, so STAGING's and
PROD's ids differ (derived from the script name, no stack sets one) and stay the same from one `pulumi up` to the next.
The service is told each limit as a plain-text binding of its config key, to name it in a 429."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from infra_harness import filled_stack_file
from test_review32_fixspec_input_limits_bindings import _declare  # the stack declared: its Worker's bindings

from infra.components.api import rate_limit_namespace_id
from service.cloudflare_entry import RATE_LIMIT_BINDINGS
from service.config import ServiceConfig

NAMES = ("RATE_LIMIT_CREATE", "RATE_LIMIT_INPUTS")
SETTINGS = ("CREATE_RATE_LIMIT_PER_MINUTE", "INPUTS_RATE_LIMIT_PER_MINUTE")


def _limits(bindings: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {name: bindings.get(name) for name in NAMES}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_stack_without_rate_limits_binds_the_defaults_a_minute(stack, stacks_dir, tmp_path, bundle):
    bindings = _declare(stack, {}, stacks_dir, tmp_path, bundle)
    limits = _limits(bindings)
    assert {name: (b["type"], b["simple"]) for name, b in limits.items()} == {
        "RATE_LIMIT_CREATE": ("ratelimit", {"limit": 600, "period": 60}),
        "RATE_LIMIT_INPUTS": ("ratelimit", {"limit": 600, "period": 60})}
    assert {name: bindings[name]["text"] for name in SETTINGS} == {"CREATE_RATE_LIMIT_PER_MINUTE": "600",
                                                                   "INPUTS_RATE_LIMIT_PER_MINUTE": "600"}


def test_the_stacks_rate_limits_reach_the_bindings_and_the_services_settings(stacks_dir, tmp_path, bundle):
    bindings = _declare("staging", {"rate_limits": {"create_per_minute": 30, "inputs_per_minute": 7}}, stacks_dir,
                        tmp_path, bundle)
    assert bindings["RATE_LIMIT_CREATE"]["simple"] == {"limit": 30, "period": 60}
    assert bindings["RATE_LIMIT_INPUTS"]["simple"] == {"limit": 7, "period": 60}
    # Each setting is the service config key the Worker reads it as (its name lower-cased), a value it takes.
    read = {name.lower(): int(bindings[name]["text"]) for name in SETTINGS}
    assert set(read) <= {f.name for f in dataclasses.fields(ServiceConfig)}
    config = ServiceConfig.from_mapping({"stack": "staging", "api_token": "t" * 32, "webhook_secret": "w" * 32,
                                         "runpod_api_key": "k", "runpod_endpoint_base": "https://e.example/v2/ep",
                                         "public_base_url": "https://api.example", **read})
    assert (config.create_rate_limit_per_minute, config.inputs_rate_limit_per_minute) == (30, 7)


def test_staging_and_prod_count_under_namespaces_of_their_own_the_same_at_every_apply(stacks_dir, tmp_path, bundle):
    ids = {}
    for stack in ("staging", "prod", "staging"):
        bindings = _declare(stack, {}, stacks_dir, tmp_path, bundle)
        found = {name: bindings[name]["namespaceId"] for name in NAMES}
        assert ids.setdefault(stack, found) == found, "a namespace id changed between two applies"
    every = [ids[stack][name] for stack in ("staging", "prod") for name in NAMES]
    assert len(set(every)) == 4, ids  # no two bindings, of one stack or of both, share counts
    for value in every:
        assert isinstance(value, str) and re.fullmatch(r"[1-9][0-9]{8}", value), value  # a positive integer, as text
    staging_script = filled_stack_file("staging")["config"]["goldgate:spec"]["api"]["script_name"]
    assert ids["staging"]["RATE_LIMIT_CREATE"] == rate_limit_namespace_id(staging_script, "RATE_LIMIT_CREATE")


def test_the_bindings_infra_declares_are_those_the_worker_reads():
    assert sorted(RATE_LIMIT_BINDINGS.values()) == sorted(NAMES)
