"""R2 over its S3 API, for operators: put, read, list and delete objects (D1 backups under `backups/`).

A backup file goes up through boto3's managed transfer (multipart above `multipart_threshold`), with
its sha256 as object metadata, and comes back streamed to a file whose sha256 is checked against it:
a 10 GB D1 dump is never held in memory."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import urllib3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from goldgate.bounded_http import format_seconds, transfer_deadline_s
from goldgate.cloudflare.errors import R2Error, R2Unreachable

BACKUP_PREFIX = "backups/"
SHA256_METADATA = "sha256"  # x-amz-meta-sha256: the hex sha256 of the whole object, as the writer computed it
MiB = 1024 * 1024
# R2's multipart parts are at least 5 MiB (except the last) and at most 10,000: 64 MiB parts carry a 10 GB
# D1 dump in 160 parts; a few in flight bound the memory and sockets a transfer takes.
MULTIPART_THRESHOLD = 64 * MiB
PART_SIZE = 64 * MiB
READ_CHUNK = MiB


def r2_endpoint(account_id: str, jurisdiction: str = "default") -> str:
    """R2's S3 endpoint for a bucket of `jurisdiction` (a stack's storage.jurisdiction). A jurisdictional bucket
    (eu, fedramp) exists only behind its own host, `<account>.<jurisdiction>.r2.cloudflarestorage.com`: the
    account's default host answers NoSuchBucket for it."""
    region = "" if jurisdiction == "default" else f".{jurisdiction}"
    return f"https://{account_id}{region}.r2.cloudflarestorage.com"


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class FetchedBackup:
    """An object streamed to `path`: its size and sha256 taken as it was written, and the sha256 its
    writer recorded in the object's metadata (None when it recorded none)."""
    path: Path
    bytes: int
    sha256: str
    recorded_sha256: str | None


def _create_only(params: dict[str, Any], **_: Any) -> None:
    """Every write through R2Admin is create-only, whole-object PUT or multipart alike: R2 honours
    `If-None-Match: *` on PutObject and CompleteMultipartUpload."""
    params.setdefault("IfNoneMatch", "*")


class R2Admin:
    """One bucket. Writes are create-only (`If-None-Match: *`): a backup is never overwritten."""

    def __init__(self, endpoint_url: str, bucket: str, access_key_id: str, secret_access_key: str, *,
                 multipart_threshold: int = MULTIPART_THRESHOLD, part_size: int = PART_SIZE,
                 max_concurrency: int = 4,
                 transfer_deadline: Callable[[int], float] = transfer_deadline_s) -> None:
        self.bucket = bucket
        # Seconds reading an object of so many bytes may take (boto3 bounds each socket read, not the whole).
        self._transfer_deadline = transfer_deadline
        self.endpoint_url = endpoint_url
        # "classic": s3transfer over this client (the CRT client would bypass the create-only hook below).
        self._transfer = TransferConfig(multipart_threshold=multipart_threshold, multipart_chunksize=part_size,
                                        max_concurrency=max_concurrency, preferred_transfer_client="classic")
        # R2 rejects the checksums newer boto3 adds by default; only send them when required.
        self._s3 = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name="auto", aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(request_checksum_calculation="when_required",
                          response_checksum_validation="when_required", retries={"max_attempts": 3}))
        for operation in ("PutObject", "CompleteMultipartUpload"):
            self._s3.meta.events.register(f"before-parameter-build.s3.{operation}", _create_only,
                                          unique_id=f"goldgate-create-only-{operation}")

    def __repr__(self) -> str:  # never show keys
        return f"R2Admin(bucket={self.bucket})"

    def put_backup(self, name: str, body: bytes, content_type: str = "application/sql") -> StoredObject:
        """Store `body` at `backups/<name>`, refusing to overwrite an existing backup."""
        key = _backup_key(name)
        try:
            out = self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type,
                                      IfNoneMatch="*")
        except (ClientError, BotoCoreError) as exc:
            md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
            stored = self._stored_already(key, len(body), lambda head: _etag(head) == md5)
            if stored is None:
                raise self._store_failed(key, exc) from None
            return stored
        return StoredObject(key=key, size=len(body), etag=str(out.get("ETag", "")).strip('"'))

    def put_backup_file(self, name: str, path: Path, sha256: str,
                        content_type: str = "application/sql") -> StoredObject:
        """Store the file at `backups/<name>` through the managed transfer (multipart when large), its
        `sha256` recorded as object metadata; create-only. An upload that fails part way is aborted
        by the transfer, so nothing is left under the key."""
        key = _backup_key(name)
        extra = {"ContentType": content_type, "Metadata": {SHA256_METADATA: sha256}}
        try:
            try:
                with create_transfer_manager(self._s3, self._transfer) as manager:
                    manager.upload(str(path), self.bucket, key, extra_args=extra).result()
            except (ClientError, BotoCoreError) as exc:
                stored = self._stored_already(key, path.stat().st_size,
                                              lambda head: (head.get("Metadata") or {}).get(SHA256_METADATA) == sha256)
                if stored is None:
                    raise self._store_failed(key, exc) from None
                return stored
            head = self._s3.head_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._store_failed(key, exc) from None
        except OSError as exc:
            raise R2Error(f"reading {path} to store it as {key} failed ({exc.strerror or exc}); nothing was "
                          "stored") from None
        size = int(head.get("ContentLength", -1))
        if size != path.stat().st_size:
            raise R2Error(f"backup {key} holds {size} bytes in bucket {self.bucket}, but {path} has "
                          f"{path.stat().st_size}: the upload was damaged; delete the object and store it again")
        return StoredObject(key=key, size=size, etag=str(head.get("ETag", "")).strip('"'))

    def fetch(self, key: str, target: Path) -> FetchedBackup:
        """Stream object `key` into the file `target`, hashing it on the way; `target` appears only once
        the whole object is on disk (a read cut short leaves nothing under that name)."""
        partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
        digest = hashlib.sha256()
        size = 0
        started = time.monotonic()
        try:
            answer = self._s3.get_object(Bucket=self.bucket, Key=key)
            recorded = (answer.get("Metadata") or {}).get(SHA256_METADATA)
            expected = int(answer.get("ContentLength") or 0)
            deadline_s = self._transfer_deadline(expected)
            # botocore's StreamingBody.read(n) waits for all n bytes, so a peer trickling bytes would hold one
            # read for days; the urllib3 response under it (urllib3 is pinned) hands over what has arrived, so the
            # deadline is checked as bytes come. urllib3 still refuses a body shorter than its Content-Length.
            body = answer["Body"]._raw_stream
            with partial.open("xb") as out:
                while chunk := body.read1(READ_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if time.monotonic() - started > deadline_s:
                        body.close()
                        raise R2Error(f"reading {key} from bucket {self.bucket} did not finish within "
                                      f"{format_seconds(deadline_s)} ({size} of {expected} bytes had come): the "
                                      f"link or R2 is too slow; nothing was written to {target}: read it again")
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
        except ClientError as exc:
            partial.unlink(missing_ok=True)
            code = exc.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                raise R2Error(f"no object {key} in bucket {self.bucket}") from None
            raise R2Error(f"reading {key} from bucket {self.bucket} failed ({code})") from None
        except (BotoCoreError, urllib3.exceptions.HTTPError) as exc:
            partial.unlink(missing_ok=True)
            raise R2Error(f"reading {key} from bucket {self.bucket} failed after {size} bytes ({exc}); nothing "
                          f"was written to {target}: read it again") from None
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise R2Error(f"writing {key} to {partial.parent} failed ({exc.strerror or exc}); free space or fix "
                          "the directory's permissions and read it again") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return FetchedBackup(path=target, bytes=size, sha256=digest.hexdigest(), recorded_sha256=recorded)

    def _stored_already(self, key: str, size: int, ours: Callable[[dict[str, Any]], bool]) -> StoredObject | None:
        """The object at `key` when it holds what a failed store was writing, else None. boto3 retries a PUT
        whose answer was lost (the connection dropped after R2 stored it); create-only, the retry is refused
        412 (a multipart one: NoSuchUpload, the upload already completed), yet the backup is there, whole."""
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError):
            return None
        if int(head.get("ContentLength", -1)) != size or not ours(head):
            return None
        return StoredObject(key=key, size=size, etag=_etag(head))

    def _store_failed(self, key: str, exc: ClientError | BotoCoreError) -> R2Error:
        if isinstance(exc, BotoCoreError):
            return R2Error(f"storing backup {key} in bucket {self.bucket} failed ({exc}); the upload did not "
                           "complete (R2 keeps no part of it): store it again under a new name")
        code = exc.response.get("Error", {}).get("Code")
        if code in ("PreconditionFailed", "412"):
            return R2Error(f"backup {key} already exists in bucket {self.bucket}; backups are never "
                           "overwritten: use a new name")
        return R2Error(f"storing backup {key} in bucket {self.bucket} failed ({code}): {exc}")

    def get(self, key: str, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        """A small object (a manifest) whole; a backup is read with `fetch`, into a file, a chunk at a time."""
        try:
            answer = self._s3.get_object(Bucket=self.bucket, Key=key)
            length = int(answer.get("ContentLength") or 0)
            with contextlib.closing(answer["Body"]) as body:  # closed however it ends: the connection goes back
                data = b"" if length > max_bytes else body.read(max_bytes + 1)
            if length > max_bytes or len(data) > max_bytes:
                raise R2Error(f"{key} in bucket {self.bucket} is larger than {max_bytes} bytes: not read into "
                              "memory (a backup's SQL is fetched into a file)")
            return data
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
        except BotoConnectionError as exc:   # refused, DNS, timed out: R2 never answered
            raise R2Unreachable(f"listing {prefix} in bucket {self.bucket} failed: {exc}") from None
        except (ClientError, BotoCoreError) as exc:
            raise R2Error(f"listing {prefix} in bucket {self.bucket} failed: {exc}") from None
        return out

    def delete(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise R2Error(f"deleting {key} from bucket {self.bucket} failed: {exc}") from None


def _backup_key(name: str) -> str:
    return name if name.startswith(BACKUP_PREFIX) else BACKUP_PREFIX + name.lstrip("/")


def _etag(head: dict[str, Any]) -> str:
    return str(head.get("ETag", "")).strip('"')
