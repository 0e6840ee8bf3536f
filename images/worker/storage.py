"""Result upload to Cloudflare R2 over the S3 API: create-only writes, Content-Type set.

R2 rejects the newer boto3 default checksums, hence "when_required". `IfNoneMatch="*"` makes a
write create-only: a retried job never overwrites an image. RunPod runs a job at least once, and a
second run on another GPU renders other bytes: the image an earlier run of the same render (same
job, same graph) stored is kept and described instead; any other object under the key is a conflict.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .config import StorageConfig

PUT_ATTEMPTS = 3  # a create-only write that races another run's write of the key, then gives up
RENDER_METADATA = "render"  # user metadata: the render (JobInput.render_id) whose run stored the object
# User metadata: a token of one put_create_only call. botocore resends a write whose answer was lost (a read
# timeout, a dropped connection) and the resend meets the first send's object with 412: the token, not the bytes
# (an earlier run of the same render may have stored the very same bytes), tells that this call created it.
WRITE_METADATA = "write"


class StorageError(RuntimeError):
    """An upload failed or would have overwritten a different object; the message names the key."""


class InputImageError(StorageError):
    """A job's input image cannot be used: missing from the bucket, not an image type the worker takes, too large.
    Running the job again changes nothing; the message names the key and what to do."""


# What POST /api/inputs stores (docs/INTERFACES.md, "Input images"), and its size limit: the worker checks both again
# on what it reads, since anyone holding the bucket's keys may have written the object.
INPUT_CONTENT_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
MAX_INPUT_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class InputImage:
    key: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def suffix(self) -> str:
        return INPUT_CONTENT_TYPES[self.content_type]


@dataclass(frozen=True)
class StoredObject:
    key: str
    content_type: str
    bytes: int
    sha256: str
    created: bool  # False when the key held an object already: this one, or an earlier run's (`kept`)
    # The bytes an earlier run of the same render stored under the key, kept instead of this run's bytes.
    kept: bytes | None = field(default=None, repr=False)


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

    def put_create_only(self, key: str, body: bytes, content_type: str, render_id: str) -> StoredObject:
        """Stores `body` unless the key exists; an existing object of the same `render_id` is kept and returned.

        Two runs of one job can write the same key at once (RunPod runs a job at least once): S3 may answer the
        racing conditional write 409 ConditionalRequestConflict, which asks for a retry, and the object a 412
        named may be gone by the read-back (the other run failed and removed it). Both write again."""
        digest = hashlib.sha256(body).hexdigest()
        write = uuid.uuid4().hex
        for _ in range(PUT_ATTEMPTS):
            try:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type,
                                        IfNoneMatch="*", Metadata={"sha256": digest, RENDER_METADATA: render_id,
                                                                   WRITE_METADATA: write})
                return StoredObject(key, content_type, len(body), digest, created=True)
            except ClientError as exc:
                if _code(exc) in ("ConditionalRequestConflict", "409"):
                    continue
                if _code(exc) not in ("PreconditionFailed", "412"):
                    meta = exc.response.get("ResponseMetadata") or {}
                    # A 5xx may come after S3 stored the object, and an answer botocore retried may have been
                    # lost after an earlier send stored it; a plain refusal (403, 400) stored nothing.
                    maybe_stored = meta.get("HTTPStatusCode", 0) >= 500 or meta.get("RetryAttempts", 0) > 0
                    left = self._remove_own(key, write) if maybe_stored else ""
                    raise StorageError(f"upload of {key} to bucket {self.bucket} failed: "
                                       f"{_code(exc) or exc}{left}") from None
            except BotoCoreError as exc:
                # Every send's answer was lost (a read timeout, a dropped connection): any of them may have stored
                # the object, which no job will describe.
                raise StorageError(f"upload of {key} to bucket {self.bucket} failed: {exc}"
                                   f"{self._remove_own(key, write)}") from None
            existing = self._existing(key, digest, len(body), content_type, render_id, write)
            if existing is not None:
                return existing
        raise StorageError(f"upload of {key} to bucket {self.bucket} kept racing another write of the key "
                           f"({PUT_ATTEMPTS} attempts); retry the job")

    def read_input(self, key: str, max_bytes: int | None = None) -> InputImage:
        """The input image a client uploaded under `key`; InputImageError when it is missing, of another type or
        larger than `max_bytes` (MAX_INPUT_BYTES; its declared size is checked before its body is read),
        StorageError when the store fails."""
        max_bytes = MAX_INPUT_BYTES if max_bytes is None else max_bytes
        try:
            obj = self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise InputImageError(f"input image {key} is not in bucket {self.bucket}: it was never uploaded "
                                      f"there, or it was deleted after the retention period; upload it again with "
                                      f"POST /api/inputs and resubmit the job with the new key") from None
            raise StorageError(f"reading input image {key} from bucket {self.bucket} failed: "
                               f"{_code(exc) or exc}") from None
        except BotoCoreError as exc:
            raise StorageError(f"reading input image {key} from bucket {self.bucket} failed: {exc}") from None
        body = obj["Body"]
        try:
            content_type = str(obj.get("ContentType") or "").split(";")[0].strip().lower()
            if content_type not in INPUT_CONTENT_TYPES:
                raise InputImageError(f"input image {key} has Content-Type {content_type or 'none'!r}, not one of "
                                      f"{', '.join(INPUT_CONTENT_TYPES)}: it was not stored by POST /api/inputs; "
                                      f"upload the image with it and resubmit the job with the new key")
            declared = obj.get("ContentLength")
            if isinstance(declared, int) and declared > max_bytes:
                raise InputImageError(f"input image {key} is {declared} bytes, over the worker's limit of "
                                      f"{max_bytes}; upload a smaller image with POST /api/inputs")
            data = body.read(max_bytes + 1)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise StorageError(f"reading input image {key} from bucket {self.bucket} failed: {exc}") from None
        finally:
            body.close()
        if len(data) > max_bytes:
            raise InputImageError(f"input image {key} is over the worker's limit of {max_bytes} bytes; upload a "
                                  f"smaller image with POST /api/inputs")
        if isinstance(declared, int) and len(data) < declared:
            raise StorageError(f"reading input image {key} from bucket {self.bucket} was cut short: {len(data)} "
                               f"of its {declared} bytes arrived")
        return InputImage(key, content_type, data)

    def delete_created(self, keys: list[str]) -> list[str]:
        """Best effort: removes objects this job attempt created before it failed; returns the keys left."""
        left = []
        for key in keys:
            try:
                self._client.delete_object(Bucket=self.bucket, Key=key)
            except (ClientError, BotoCoreError):
                left.append(key)
        return left

    def _remove_own(self, key: str, write: str) -> str:
        """The call that would have stored `key` fails: removes the object if this call stored it all the same
        (only this call's sends carry its write token). Best effort: returns "" when nothing of this call's is
        left, else a clause for the error naming the object that may be left and why."""
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return ""
            return f"; could not check whether it was stored all the same ({_code(exc) or exc}): {key} may be left"
        except BotoCoreError as exc:
            # No answer at all (the store unreachable): whether any send got there is as unknown as before.
            return (f"; the store could not be reached to check whether an earlier send stored it ({exc}): if one "
                    f"did, {key} may be left")
        if (head.get("Metadata") or {}).get(WRITE_METADATA) != write:
            return ""
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            return f"; it was stored all the same and could not be removed ({_code(exc) or exc}): {key} is left"
        except BotoCoreError as exc:
            return f"; it was stored all the same and could not be removed ({exc}): {key} is left"
        return ""

    def _existing(self, key: str, digest: str, size: int, content_type: str, render_id: str,
                  write: str) -> StoredObject | None:
        """The key exists already: created by this call's own earlier send (its answer was lost), fine if it
        holds these exact bytes or an earlier run of this render's image, an error otherwise; None if it is gone
        again (write it)."""
        try:
            obj = self._client.get_object(Bucket=self.bucket, Key=key)
            existing = obj["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise StorageError(f"{key} already exists in bucket {self.bucket} and could not be read back "
                               f"to compare: {exc}{self._remove_own(key, write)}") from None
        except BotoCoreError as exc:
            raise StorageError(f"{key} already exists in bucket {self.bucket} and could not be read back "
                               f"to compare: {exc}{self._remove_own(key, write)}") from None
        stored_type = obj.get("ContentType") or content_type
        existing_digest = hashlib.sha256(existing).hexdigest()
        metadata = obj.get("Metadata") or {}
        if metadata.get(WRITE_METADATA) == write and existing_digest == digest:
            return StoredObject(key, stored_type, size, digest, created=True)
        if existing_digest == digest:
            return StoredObject(key, stored_type, size, digest, created=False)
        render = metadata.get(RENDER_METADATA)
        if render == render_id:
            return StoredObject(key, stored_type, len(existing), existing_digest, created=False, kept=existing)
        stored_by = f"stored by render {render}" if render else "not stored by a goldgate worker run"
        raise StorageError(f"{key} already exists in bucket {self.bucket} with different content "
                           f"({len(existing)} bytes, {stored_by}; this job is render {render_id}); refusing to "
                           f"overwrite a stored result")
