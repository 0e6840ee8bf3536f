"""Storage: the R2 results bucket and the D1 backups bucket (each with its lifecycle rules and a token scoped to it
alone), and the D1 database (migrated)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from goldgate.cloudflare.r2 import BACKUP_PREFIX, r2_endpoint
from goldgate.spec import StackSpec
from infra.d1_migrations_provider import DEFAULT_CLOUDFLARE_API, D1Migrations
from infra.names import StackNames
from service.inputs import INPUTS_PREFIX
from service.results import RESULTS_PREFIX

# Cloudflare's permission groups "Workers R2 Storage Bucket Item Write" / "... Item Read" (stable ids;
# override with goldgate:r2WritePermissionGroupId / goldgate:r2ReadPermissionGroupId if Cloudflare changes them).
R2_BUCKET_ITEM_WRITE = "2efd5506f9c8494dacb1fa10a3e7d5b6"
R2_BUCKET_ITEM_READ = "6a018a9f2fc74eb6b293b0c548f38b39"
ABORT_MULTIPART_AFTER_S = 86_400


def r2_endpoint_url(account_id: str, jurisdiction: str) -> str:
    """The S3 endpoint; jurisdictional buckets are only reachable through their own host (the one rule the
    operators' R2 client uses too)."""
    return r2_endpoint(account_id, jurisdiction)


def r2_secret_access_key(token_value: str) -> str:
    """R2's S3 secret for an API token is the SHA-256 (hex) of the token's value."""
    return hashlib.sha256(token_value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StorageArgs:
    spec: StackSpec
    names: StackNames
    account_id: str
    cloudflare_api_token: pulumi.Input[str]
    migrations: Mapping[str, str]
    r2_write_permission_group_id: str = R2_BUCKET_ITEM_WRITE
    r2_read_permission_group_id: str = R2_BUCKET_ITEM_READ
    cloudflare_api_base: str = DEFAULT_CLOUDFLARE_API


class Storage(pulumi.ComponentResource):
    """R2 bucket + lifecycle + scoped token, D1 database + migrations; PROD's D1 and bucket are protected and retained
    on delete (a protected STAGING D1 too)."""

    bucket_name: pulumi.Output[str]
    database_id: pulumi.Output[str]
    r2_endpoint_url: str
    r2_access_key_id: pulumi.Output[str]
    r2_secret_access_key: pulumi.Output[str]

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("goldgate:storage:Storage", name, None, opts)
        spec, names = args.spec, args.names
        child = pulumi.ResourceOptions(parent=self)
        jurisdiction = spec.storage.jurisdiction

        # The results, expiring `storage.result_ttl_days` after upload; backups the DR drill stored here
        # before they had a bucket of their own expire as before.
        self.bucket, self.lifecycle = _bucket(names.logical("results"), names.bucket, args, self, [
            _expire("expire-results", RESULTS_PREFIX, spec.storage.result_ttl_days),
            # Clients' uploaded input images (POST /api/inputs) go as results do.
            _expire("expire-inputs", INPUTS_PREFIX, spec.storage.result_ttl_days),
            _expire("expire-backups", BACKUP_PREFIX, spec.storage.backup_retention_days)])
        # The DR drill's D1 backups (`backups/<stack>/<stamp>.sql` and `.manifest.json`), in a bucket the workers'
        # token does not reach (StorageSpec), each pair kept the stack's backup window: without the rule a daily
        # export of up to 10 GB stayed for ever.
        self.backup_bucket, self.backup_lifecycle = _bucket(
            names.logical("backups"), names.backup_bucket, args, self,
            [_expire("expire-backups", BACKUP_PREFIX, spec.storage.backup_retention_days)])

        # The worker's S3 credentials: a token that can touch the results bucket's objects and nothing else.
        self.r2_token = _bucket_token(names.logical("r2-token"), names.r2_token, args, self.bucket, child)
        self.r2_endpoint_url = r2_endpoint_url(args.account_id, jurisdiction)
        self.r2_access_key_id, self.r2_secret_access_key = _credentials(self.r2_token)
        # The DR drill's (an operator's or CI's): the backups bucket's objects and nothing else.
        self.backup_r2_token = _bucket_token(names.logical("backup-r2-token"), names.backup_r2_token, args,
                                             self.backup_bucket, child)
        self.backup_r2_access_key_id, self.backup_r2_secret_access_key = _credentials(self.backup_r2_token)

        protect = spec.database.protect or spec.is_prod
        self.database = cloudflare.D1Database(
            names.logical("db"), account_id=args.account_id, name=names.database,
            primary_location_hint=spec.database.location_hint,
            opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect))
        self.migrations = D1Migrations(
            names.logical("db-migrations"), account_id=args.account_id, database_id=self.database.id,
            api_token=args.cloudflare_api_token, migrations=args.migrations, api_base=args.cloudflare_api_base,
            opts=child)

        self.bucket_name = self.bucket.name
        self.backup_bucket_name = self.backup_bucket.name
        self.database_id = self.database.id
        self.register_outputs({"bucket": self.bucket_name, "backup_bucket": self.backup_bucket_name,
                               "database_id": self.database_id,
                               "r2_access_key_id": self.r2_access_key_id,
                               "r2_secret_access_key": self.r2_secret_access_key,
                               "backup_r2_access_key_id": self.backup_r2_access_key_id,
                               "backup_r2_secret_access_key": self.backup_r2_secret_access_key})


Rules = list[cloudflare.R2BucketLifecycleRuleArgs]


def _bucket(logical: str, name: str, args: StorageArgs, parent: pulumi.Resource,
            rules: Rules) -> tuple[cloudflare.R2Bucket, cloudflare.R2BucketLifecycle]:
    """A bucket in the stack's location and jurisdiction with its lifecycle (`rules`, then the abort of
    incomplete multipart uploads). PROD's: Pulumi must not delete or replace it, and should protect be lifted
    (`pulumi state unprotect`), destroy or a replacement still leaves it in Cloudflare."""
    spec = args.spec
    jurisdiction = spec.storage.jurisdiction
    bucket = cloudflare.R2Bucket(
        logical, account_id=args.account_id, name=name, location=spec.storage.location,
        jurisdiction=jurisdiction,
        opts=pulumi.ResourceOptions(parent=parent, protect=spec.is_prod, retain_on_delete=spec.is_prod))
    lifecycle = cloudflare.R2BucketLifecycle(
        f"{logical}-lifecycle", account_id=args.account_id, bucket_name=bucket.name,
        jurisdiction=jurisdiction, rules=[*rules, _abort_multipart()],
        opts=pulumi.ResourceOptions(parent=parent))
    return bucket, lifecycle


def _credentials(token: cloudflare.ApiToken) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """A token's S3 credentials, both secret: the access key id is the token's id, the secret the SHA-256
    of its value."""
    return pulumi.Output.secret(token.id), pulumi.Output.secret(token.value.apply(r2_secret_access_key))


def _expire(rule_id: str, prefix: str, days: int) -> cloudflare.R2BucketLifecycleRuleArgs:
    """A lifecycle rule deleting each object under `prefix` `days` after its upload."""
    return cloudflare.R2BucketLifecycleRuleArgs(
        id=rule_id, enabled=True, conditions=cloudflare.R2BucketLifecycleRuleConditionsArgs(prefix=prefix),
        delete_objects_transition=cloudflare.R2BucketLifecycleRuleDeleteObjectsTransitionArgs(
            condition=cloudflare.R2BucketLifecycleRuleDeleteObjectsTransitionConditionArgs(
                type="Age", max_age=days * 86_400)))


def _abort_multipart() -> cloudflare.R2BucketLifecycleRuleArgs:
    return cloudflare.R2BucketLifecycleRuleArgs(
        id="abort-incomplete-multipart", enabled=True,
        conditions=cloudflare.R2BucketLifecycleRuleConditionsArgs(prefix=""),
        abort_multipart_uploads_transition=cloudflare.R2BucketLifecycleRuleAbortMultipartUploadsTransitionArgs(
            condition=cloudflare.R2BucketLifecycleRuleAbortMultipartUploadsTransitionConditionArgs(
                type="Age", max_age=ABORT_MULTIPART_AFTER_S)))


def _bucket_token(logical: str, name: str, args: StorageArgs, bucket: cloudflare.R2Bucket,
                  opts: pulumi.ResourceOptions) -> cloudflare.ApiToken:
    """An API token (its S3 credentials) that can read and write the objects of `bucket` and nothing else: R2
    scopes a token to whole buckets, never to a prefix."""
    jurisdiction = args.spec.storage.jurisdiction
    resource = bucket.name.apply(
        lambda bucket_name: json.dumps(
            {f"com.cloudflare.edge.r2.bucket.{args.account_id}_{jurisdiction}_{bucket_name}": "*"}))
    return cloudflare.ApiToken(
        logical, name=name, policies=[cloudflare.ApiTokenPolicyArgs(
            effect="allow", resources=resource,
            permission_groups=[cloudflare.ApiTokenPolicyPermissionGroupArgs(id=args.r2_write_permission_group_id),
                               cloudflare.ApiTokenPolicyPermissionGroupArgs(id=args.r2_read_permission_group_id)])],
        opts=opts)
