"""`pulumi up --policy-pack infra/policy_pack` holds PROD's R2 buckets to what it holds PROD's D1 to: protected, so
no replacement or delete can lose the results clients still fetch or the DR drill's D1 backups. The real program's
buckets pass it; the same buckets declared without protect are refused, each by name (STAGING's are not)."""

from __future__ import annotations

import pulumi
from infra_harness import filled_stack_file, use_cloud
from pulumi_policy import ResourceValidationPolicy
from test_infra_policies import resource_args, violations
from test_infra_program import _settings

from infra.policies import POLICIES
from infra.program import read_config, run

R2_BUCKET = "cloudflare:index/r2Bucket:R2Bucket"


def refusals(stack: str, bucket: str, protect: bool, stacks_dir) -> list[str]:
    """What every resource policy of the pack says of one R2 bucket of `stack`."""
    args = resource_args(stack, R2_BUCKET, {"name": bucket}, stacks_dir, protect=protect)
    return [message for policy in POLICIES if isinstance(policy, ResourceValidationPolicy)
            for message in violations(policy, args)]


def test_prods_buckets_pass_the_policy_pack_only_while_protected(stacks_dir, tmp_path, bundle):
    cloud = use_cloud("prod", filled_stack_file("prod")["config"]["goldgate:spec"])

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config("prod")
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        return pulumi.Output.all(out.bucket, out.storage.backup_bucket_name).apply(lambda _: None)

    program()
    names = sorted(b.inputs["name"] for b in cloud.by_type("r2Bucket:R2Bucket"))
    assert names == ["goldgate-prod-results", "goldgate-prod-results-backups"]
    for bucket in cloud.by_type("r2Bucket:R2Bucket"):
        assert refusals("prod", bucket.inputs["name"], bucket.protect, stacks_dir) == [], bucket.name
    for name in names:
        (message,) = refusals("prod", name, False, stacks_dir)
        assert name in message and "not protected" in message and "PROD" in message
    assert refusals("staging", "goldgate-staging-results", False, stacks_dir) == []
