"""Clients' input images (POST /api/inputs, under `inputs/`) are deleted from the results bucket as its results are:
`storage.result_ttl_days` after their upload, by a lifecycle rule of their own beside the results' rule, shaped as
pulumi-cloudflare's own types require. Without it an upload nobody ran a job with stayed in R2 for ever."""

from __future__ import annotations

import copy

import pulumi_cloudflare as cloudflare
import pytest
from infra_harness import filled_stack_file
from test_review12_cloudflare_schema import input_problems
from test_review13_backup_lifecycle import DAY_S, _expiring, _lifecycle

from service.inputs import INPUTS_PREFIX
from service.results import RESULTS_PREFIX


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_uploaded_input_images_expire_after_the_stacks_result_ttl(stack, stacks_dir, tmp_path, bundle):
    doc = copy.deepcopy(filled_stack_file(stack)["config"]["goldgate:spec"])
    doc["storage"]["result_ttl_days"] = 9
    results, backups = _lifecycle(stack, doc, stacks_dir, tmp_path, bundle)
    rules = results.inputs["rules"]
    assert _expiring(rules, f"{INPUTS_PREFIX}{'0' * 32}.png") == ["expire-inputs"]
    by_id = {r["id"]: r for r in rules}
    assert by_id["expire-inputs"]["deleteObjectsTransition"]["condition"] == {"type": "Age", "maxAge": 9 * DAY_S}
    assert by_id["expire-inputs"]["conditions"]["prefix"] == INPUTS_PREFIX
    assert _expiring(rules, f"{RESULTS_PREFIX}job-1/0.png") == ["expire-results"]  # the results' rule is as before
    assert input_problems(results.inputs, cloudflare.R2BucketLifecycleArgs, results.name) == []
    assert "expire-inputs" not in {r["id"] for r in backups.inputs["rules"]}  # no upload goes to the backups bucket
