"""The API Worker runs under Cloudflare's Smart Placement unless the stack says otherwise: each request makes several
D1 round trips one after another (a webhook reads its job, then writes a batch; a create counts, writes, calls
RunPod, writes again), so a Worker run near each caller pays the distance to D1 on every one of them."""

from __future__ import annotations

from typing import Any

import pytest
from infra_harness import filled_stack_file
from test_review32_fixspec_input_limits_bindings import declared_script

from goldgate import spec as specs
from goldgate.errors import GoldgateError


def _placement(stack: str, api: dict[str, Any], stacks_dir, tmp_path, bundle) -> Any:
    return declared_script(stack, api, stacks_dir, tmp_path, bundle).get("placement")


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_stack_that_says_nothing_runs_its_worker_under_smart_placement(stack, stacks_dir, tmp_path, bundle):
    assert _placement(stack, {}, stacks_dir, tmp_path, bundle) == {"mode": "smart"}


def test_smart_placement_false_runs_the_worker_where_each_request_comes_in(stacks_dir, tmp_path, bundle):
    assert _placement("staging", {"smart_placement": False}, stacks_dir, tmp_path, bundle) is None


@pytest.mark.parametrize("value", ["yes", 1, "smart", 0])
def test_a_smart_placement_that_is_not_true_or_false_is_refused_naming_it(tmp_path, value):
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["api"]["smart_placement"] = value
    with pytest.raises(GoldgateError) as refused:
        specs.from_mapping("staging", doc, "cloud", "stacks/Pulumi.staging.yaml")
    assert "api.smart_placement" in str(refused.value) and "expected true or false" in str(refused.value)
