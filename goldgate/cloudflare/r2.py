"""R2 over its S3 API, for operators: put, read, list and delete objects (D1 backups under `backups/`)."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from goldgate.cloudflare.errors import R2Error

BACKUP_PREFIX = "backups/"


def r2_endpoint(account_id: str) -> str:
    return f"https://{account_id}.r2.cloudflarestorage.com"


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    etag: str


class R2Admin:
    """One bucket. Writes are create-only (`If-None-Match: *`): a backup is never overwritten."""

    def __init__(self, endpoint_url: str, bucket: str, access_key_id: str, secret_access_key: str) -> None:
        self.bucket = bucket
        # R2 rejects the checksums newer boto3 adds by default; only send them when required.
        self._s3 = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name="auto", aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(request_checksum_calculation="when_required",
                          response_checksum_validation="when_required", retries={"max_attempts": 3}))

    def __repr__(self) -> str:  # never show keys
        return f"R2Admin(bucket={self.bucket})"

    def put_backup(self, name: str, body: bytes, content_type: str = "application/sql") -> StoredObject:
        """Store `body` at `backups/<name>`, refusing to overwrite an existing backup."""
        key = name if name.startswith(BACKUP_PREFIX) else BACKUP_PREFIX + name.lstrip("/")
        try:
            out = self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type,
                                      IfNoneMatch="*")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412"):
                raise R2Error(f"backup {key} already exists in bucket {self.bucket}; backups are never "
                              "overwritten: use a new name") from None
            raise R2Error(f"storing backup {key} in bucket {self.bucket} failed ({code}): {exc}") from None
        except BotoCoreError as exc:
            raise R2Error(f"storing backup {key} in bucket {self.bucket} failed: {exc}") from None
        return StoredObject(key=key, size=len(body), etag=str(out.get("ETag", "")).strip('"'))

    def get(self, key: str) -> bytes:
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                raise R2Error(f"no object {key} in bucket {self.bucket}") from None
            raise R2Error(f"reading {key} from bucket {self.bucket} failed ({code})") from None
        except BotoCoreError as exc:
            raise R2Error(f"reading {key} from bucket {self.bucket} failed: {exc}") from None

    def list(self, prefix: str = BACKUP_PREFIX) -> list[StoredObject]:
        out: list[StoredObject] = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                out += [StoredObject(o["Key"], int(o["Size"]), str(o.get("ETag", "")).strip('"'))
                        for o in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as exc:
            raise R2Error(f"listing {prefix} in bucket {self.bucket} failed: {exc}") from None
        return out

    def delete(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise R2Error(f"deleting {key} from bucket {self.bucket} failed: {exc}") from None
