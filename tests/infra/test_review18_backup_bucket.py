"""The DR drill's D1 backups live in a bucket of their own, with a token of their own.

An R2 token reaches whole buckets. The RunPod workers hold one for the results bucket (they upload there, on GPU
machines that run ComfyUI and its custom nodes), and the backups were kept in that same bucket under `backups/`:
each one, every job's inputs and outcome, was the workers' to read, overwrite or delete, so one compromised worker
could take the stack's disaster recovery with it. Now `storage.backup_bucket` (default `<bucket>-backups`) is a
second bucket, protected and retained on PROD like the first, with its own lifecycle and a token scoped to it
alone, exported for the drill and never given to the workers or the API Worker."""

from __future__ import annotations

import dataclasses
import json

import pulumi
import pytest
from infra_harness import filled_stack_file, use_cloud
from test_infra_program import _bindings, _settings

from goldgate.errors import SpecError
from goldgate.spec import from_pulumi_config
from infra import policies
from infra.program import read_config, run

ACCOUNT_BUCKET = "com.cloudflare.edge.r2.bucket."


def _declared(stack: str, doc: dict, stacks_dir, tmp_path, bundle):
    cloud = use_cloud(stack, doc)
    seen: dict = {}

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        exports = out.exports()
        keys = ("backup_bucket", "backup_r2_access_key_id", "backup_r2_secret_access_key")
        return pulumi.Output.all(*(pulumi.Output.from_input(exports[k]) for k in keys),
                                 *(pulumi.Output.from_input(exports[k]).is_secret() for k in keys[1:]),
                                 out.storage.backup_lifecycle.id, out.api.script.id,
                                 out.gpu.endpoint_id).apply(lambda v: seen.update(values=v))

    program()
    return cloud, seen["values"]


def _buckets_reached(token) -> set[str]:
    (policy,) = token.inputs["policies"]
    return {key.rsplit("_", 1)[1] for key in json.loads(policy["resources"]) if key.startswith(ACCOUNT_BUCKET)}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_workers_token_does_not_reach_the_backups_and_the_drills_token_reaches_nothing_else(
        stack, stacks_dir, tmp_path, bundle):
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    cloud, (backup_bucket, key_id, secret, key_is_secret, secret_is_secret, *_) = _declared(
        stack, doc, stacks_dir, tmp_path, bundle)
    results = doc["storage"]["bucket"]
    assert backup_bucket == f"{results}-backups"
    assert _buckets_reached(cloud.registered[f"{stack}-r2-token"]) == {results}
    assert _buckets_reached(cloud.registered[f"{stack}-backup-r2-token"]) == {backup_bucket}
    # The drill's credentials are exported (docs/D1_DISASTER_RECOVERY.md) and stay secret.
    assert key_id and len(secret) == 64 and key_is_secret and secret_is_secret
    # The workers and the API Worker are given the results bucket and its token only.
    env = cloud.one("runpod:ServerlessEndpoint").inputs["env"]
    assert env["R2_BUCKET"] == results and key_id not in env.values() and secret not in env.values()
    assert backup_bucket not in json.dumps(_bindings(cloud))
    # PROD's backups survive `pulumi destroy` as its results and D1 do; the bucket keeps them their window.
    bucket = cloud.registered[f"{stack}-backups"]
    assert bucket.inputs["name"] == backup_bucket
    assert (bucket.protect, bucket.retain_on_delete) == ((stack == "prod"),) * 2
    rules = cloud.registered[f"{stack}-backups-lifecycle"].inputs["rules"]
    assert {r["id"] for r in rules} == {"expire-backups", "abort-incomplete-multipart"}


def test_a_backup_bucket_named_in_the_stack_file_is_the_one_declared(stacks_dir, tmp_path, bundle):
    doc = filled_stack_file("prod")["config"]["goldgate:spec"]
    doc["storage"]["backup_bucket"] = "acme-dr-prod"
    cloud, (backup_bucket, *_) = _declared("prod", doc, stacks_dir, tmp_path, bundle)
    assert backup_bucket == "acme-dr-prod" == cloud.registered["prod-backups"].inputs["name"]
    assert _buckets_reached(cloud.registered["prod-backup-r2-token"]) == {"acme-dr-prod"}


def test_the_results_bucket_as_backup_bucket_is_refused_saying_why():
    doc = filled_stack_file("prod")["config"]["goldgate:spec"]
    doc["storage"]["backup_bucket"] = doc["storage"]["bucket"]
    with pytest.raises(SpecError, match=r"storage\.backup_bucket: .* is the results bucket: the RunPod workers"):
        from_pulumi_config("prod", doc)


@pytest.mark.parametrize(("value", "said"), [
    ("Backups_Prod", "a bucket name R2 accepts"),
    ("", "expected a non-empty string"),
    (["x"], "expected a non-empty string"),
])
def test_a_malformed_backup_bucket_is_refused_by_name(value, said):
    doc = filled_stack_file("prod")["config"]["goldgate:spec"]
    doc["storage"]["backup_bucket"] = value
    with pytest.raises(SpecError, match=r"storage\.backup_bucket") as raised:
        from_pulumi_config("prod", doc)
    assert said in str(raised.value)


def test_a_results_bucket_too_long_for_the_default_gets_it_cut_to_fit():
    doc = filled_stack_file("prod")["config"]["goldgate:spec"]
    doc["storage"]["bucket"] = "p" * 63  # R2 takes 63 characters
    assert from_pulumi_config("prod", doc).storage.backup_bucket == "p" * 55 + "-backups"
    doc["storage"]["backup_bucket"] = "prod-dr"
    assert from_pulumi_config("prod", doc).storage.backup_bucket == "prod-dr"


def test_a_results_bucket_whose_cut_default_is_itself_asks_for_a_backup_bucket():
    doc = filled_stack_file("prod")["config"]["goldgate:spec"]
    doc["storage"]["bucket"] = "p" * 55 + "-backups"  # 63 characters: the default, cut to fit, is the same name
    with pytest.raises(SpecError, match=r"storage\.backup_bucket: is needed: .* is 'p+-backups' itself"):
        from_pulumi_config("prod", doc)


def test_staging_may_not_share_prods_backup_bucket():
    staging = from_pulumi_config("staging", filled_stack_file("staging")["config"]["goldgate:spec"])
    prod = from_pulumi_config("prod", filled_stack_file("prod")["config"]["goldgate:spec"])
    assert policies.shared_identifier_violations([staging, prod]) == []
    clash = dataclasses.replace(staging, storage=dataclasses.replace(
        staging.storage, backup_bucket=prod.storage.backup_bucket))
    (message,) = policies.shared_identifier_violations([clash, prod])
    assert repr(prod.storage.backup_bucket) in message and "backup_bucket" in message
