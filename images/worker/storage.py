"""Result upload to Cloudflare R2 over the S3 API: create-only writes, Content-Type set.

R2 rejects the newer boto3 default checksums, hence "when_required". `IfNoneMatch="*"` makes a
write create-only: a retried job never overwrites an image, and a different image under an
existing key is reported instead of silently replacing it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .config import StorageConfig


class StorageError(RuntimeError):
    """An upload failed or would have overwritten a different object; the message names the key."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    content_type: str
    bytes: int
    sha256: str
    created: bool  # False when an identical object already existed (an idempotent retry)


def make_s3_client(storage: StorageConfig):  # boto3 clients have no static type
    config = Config(signature_version="s3v4", request_checksum_calculation="when_required",
                    response_checksum_validation="when_required", connect_timeout=10, read_timeout=60,
                    retries={"max_attempts": 3, "mode": "standard"})
    return boto3.client("s3", endpoint_url=storage.endpoint_url, region_name="auto",
                        aws_access_key_id=storage.access_key_id,
                        aws_secret_access_key=storage.secret_access_key, config=config)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class ResultStore:
    def __init__(self, storage: StorageConfig, client=None) -> None:
        self.bucket = storage.bucket
        self._client = client or make_s3_client(storage)

    def put_create_only(self, key: str, body: bytes, content_type: str) -> StoredObject:
        digest = hashlib.sha256(body).hexdigest()
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type,
                                    IfNoneMatch="*", Metadata={"sha256": digest})
            return StoredObject(key, content_type, len(body), digest, created=True)
        except ClientError as exc:
            if _code(exc) not in ("PreconditionFailed", "412"):
                raise StorageError(f"upload of {key} to bucket {self.bucket} failed: {_code(exc) or exc}") from None
        except BotoCoreError as exc:
            raise StorageError(f"upload of {key} to bucket {self.bucket} failed: {exc}") from None
        return self._existing(key, digest, len(body), content_type)

    def delete_created(self, keys: list[str]) -> list[str]:
        """Best effort: removes objects this job attempt created before it failed; returns the keys left."""
        left = []
        for key in keys:
            try:
                self._client.delete_object(Bucket=self.bucket, Key=key)
            except (ClientError, BotoCoreError):
                left.append(key)
        return left

    def _existing(self, key: str, digest: str, size: int, content_type: str) -> StoredObject:
        """The key exists already: fine if it holds these exact bytes, an error otherwise."""
        try:
            obj = self._client.get_object(Bucket=self.bucket, Key=key)
            existing = obj["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"{key} already exists in bucket {self.bucket} and could not be read back "
                               f"to compare: {exc}") from None
        if hashlib.sha256(existing).hexdigest() != digest:
            raise StorageError(f"{key} already exists in bucket {self.bucket} with different content "
                               f"({len(existing)} bytes); refusing to overwrite a stored result")
        return StoredObject(key, obj.get("ContentType") or content_type, size, digest, created=False)
