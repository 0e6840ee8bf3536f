"""The DR drill's D1 backups in R2 expire after storage.backup_retention_days: a Pulumi-owned lifecycle rule for the
`backups/` prefix beside the results' rule, shaped as pulumi-cloudflare's own types require. Before, nothing deleted
them: each daily export (up to 10 GB) stayed in the bucket for ever. The backups now have a bucket of their own
(test_review18_backup_bucket.py), with the same rule; the results bucket keeps its rule for the backups stored there
before."""

from __future__ import annotations

import copy

import pulumi
import pulumi_cloudflare as cloudflare
import pytest
from infra_harness import SECRETS, filled_stack_file, use_cloud
from test_infra_program import _settings
from test_infra_program_changes import changes, declared
from test_review12_cloudflare_schema import input_problems

from goldgate.cloudflare.r2 import BACKUP_PREFIX
from goldgate.spec import DEFAULT_BACKUP_RETENTION_DAYS
from infra.program import read_config, run
from service.results import RESULTS_PREFIX

DAY_S = 86_400


def _lifecycle(stack, doc, stacks_dir, tmp_path, bundle):
    cloud = use_cloud(stack, doc)

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        return pulumi.Output.all(out.storage.lifecycle.id, out.storage.backup_lifecycle.id,
                                 out.api.script.id).apply(lambda _: None)

    program()
    return cloud.registered[f"{stack}-results-lifecycle"], cloud.registered[f"{stack}-backups-lifecycle"]


def _expiring(rules, key):
    """The ids of the rules that delete the object `key` by age, as R2 matches a rule's prefix."""
    return [r["id"] for r in rules if r["enabled"] and "deleteObjectsTransition" in r
            and key.startswith(r["conditions"]["prefix"])]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_drills_backups_expire_after_the_stacks_window_and_results_after_theirs(stack, stacks_dir, tmp_path,
                                                                                      bundle):
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    results, backups = _lifecycle(stack, doc, stacks_dir, tmp_path, bundle)
    # A key as the cloud drill stores it (R2Admin.put_backup_file: BACKUP_PREFIX + "<stack>/<stamp>.sql").
    backup_key = f"{BACKUP_PREFIX}{stack}/20261129T030000.000000Z.sql"
    for lifecycle in (backups, results):  # the results bucket: backups a drill stored there before
        rules = lifecycle.inputs["rules"]
        assert _expiring(rules, backup_key) == ["expire-backups"]
        by_id = {r["id"]: r for r in rules}
        assert by_id["expire-backups"]["deleteObjectsTransition"]["condition"] == {
            "type": "Age", "maxAge": DEFAULT_BACKUP_RETENTION_DAYS * DAY_S}
        assert any("abortMultipartUploadsTransition" in r for r in rules)
        assert input_problems(lifecycle.inputs, cloudflare.R2BucketLifecycleArgs, lifecycle.name) == []
    assert _expiring(results.inputs["rules"], f"{RESULTS_PREFIX}job-1/0.png") == ["expire-results"]
    assert "expire-results" not in {r["id"] for r in backups.inputs["rules"]}


def test_a_window_set_in_the_stack_file_reaches_the_rule_as_an_update_of_the_lifecycle_only(stacks_dir, tmp_path,
                                                                                              bundle):
    doc = filled_stack_file("prod")["config"]["goldgate:spec"]
    longer = copy.deepcopy(doc)
    longer["storage"]["backup_retention_days"] = 400
    for lifecycle in _lifecycle("prod", longer, stacks_dir, tmp_path, bundle):
        by_id = {r["id"]: r for r in lifecycle.inputs["rules"]}
        assert by_id["expire-backups"]["deleteObjectsTransition"]["condition"]["maxAge"] == 400 * DAY_S
    # The protected bucket, the database and the endpoint are untouched: only the rules change.
    before = declared("prod", doc, SECRETS, stacks_dir, tmp_path, bundle)
    after = declared("prod", longer, SECRETS, stacks_dir, tmp_path, bundle)
    assert changes(before, after) == {"r2BucketLifecycle:R2BucketLifecycle": ["rules"]}
