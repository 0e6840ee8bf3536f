"""The ResultStore port over an S3-protocol server (moto locally; R2 speaks the same) with boto3: results are read,
input images written create-only (IfNoneMatch)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from service.ports import ObjectMeta, ObjectTooLarge, StoredObject, StoreUnavailable

_CHUNK = 64 * 1024

# One botocore session per process: building one re-reads the endpoint and S3 model JSON (0.1-0.2 s of CPU),
# and what it loads is the same for every store. A session is not safe to create clients from in two threads
# at once, so the lock covers building it and every create_client; the clients it hands out are thread-safe.
# It holds no credentials: each connect passes its own to create_client.
_session: botocore.session.Session | None = None
_session_lock = threading.Lock()


def _create_client(**kwargs: Any) -> Any:
    global _session
    with _session_lock:
        if _session is None:
            session = botocore.session.Session()
            # Keep timestamps (LastModified) as the server's HTTP-date text instead of parsing them with
            # dateutil, a fifth of a HEAD's client-side cost; _meta reads the one it needs with email.utils.
            session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
            _session = session
        return _session.create_client("s3", **kwargs)


class S3ResultStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def connect(cls, endpoint_url: str, bucket: str, access_key_id: str, secret_access_key: str,
                region: str = "us-east-1") -> S3ResultStore:
        config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=15,
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                        max_pool_connections=32, s3={"addressing_style": "path"},
                        parameter_validation=False)  # bucket and key are ours, checked before any call
        client = _create_client(endpoint_url=endpoint_url, aws_access_key_id=access_key_id,
                                aws_secret_access_key=secret_access_key, region_name=region, config=config)
        return cls(client, bucket)

    def _head(self, key: str) -> ObjectMeta | None:
        try:
            reply = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreUnavailable(f"HEAD {key} failed: {exc.response.get('Error', {}).get('Code')}") from None
        except BotoCoreError as exc:
            raise StoreUnavailable(f"HEAD {key} failed: {type(exc).__name__}") from None
        return _meta(key, reply)

    async def head(self, key: str) -> ObjectMeta | None:
        return await asyncio.to_thread(self._head, key)

    def _get(self, key: str) -> tuple[ObjectMeta, Any, bytes] | None:
        """The object's meta, its body stream and the body's first chunk."""
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreUnavailable(f"GET {key} failed: {exc.response.get('Error', {}).get('Code')}") from None
        except BotoCoreError as exc:
            raise StoreUnavailable(f"GET {key} failed: {type(exc).__name__}") from None
        body = reply["Body"]
        # The first chunk is read before the service answers: a store that breaks off before any of the body
        # gets the client a 503 to retry, not a 200 whose body never comes.
        try:
            first = _read_chunk(key, body, 0)
        except StoreUnavailable:
            body.close()
            raise
        return _meta(key, reply), body, first

    async def get(self, key: str) -> StoredObject | None:
        found = await asyncio.to_thread(self._get, key)
        if found is None:
            return None
        meta, body, first = found
        return StoredObject(meta, _chunks(key, body, first))

    def _read_at_most(self, key: str, limit: int) -> bytes | None:
        found = self._get(key)
        if found is None:
            return None
        _, body, chunk = found
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk:
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise ObjectTooLarge(f"{key} has more than {limit} bytes")
                chunk = _read_chunk(key, body, size)
        finally:
            body.close()  # also what is over the limit: never read, its connection not reused
        return b"".join(chunks)

    async def read_at_most(self, key: str, limit: int) -> bytes | None:
        return await asyncio.to_thread(self._read_at_most, key, limit)

    def _create(self, key: str, data: bytes, content_type: str) -> bool:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, IfNoneMatch="*")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412"):  # the key is taken
                return False
            raise StoreUnavailable(f"PUT {key} failed: {code}") from None
        except BotoCoreError as exc:
            raise StoreUnavailable(f"PUT {key} failed: {type(exc).__name__}") from None
        return True

    async def create(self, key: str, data: bytes, content_type: str, sha256: str) -> bool:
        return await asyncio.to_thread(self._create, key, data, content_type)


def _meta(key: str, reply: dict[str, Any]) -> ObjectMeta:
    # LastModified is the server's HTTP-date text from connect's client, a datetime from a default one;
    # an object without a readable date just gets no Last-Modified.
    etag, modified = reply.get("ETag"), reply.get("LastModified")
    try:
        when = modified if isinstance(modified, datetime) else parsedate_to_datetime(modified)
        modified = int(when.timestamp())
    except (TypeError, ValueError):
        modified = None
    return ObjectMeta(key, int(reply["ContentLength"]), reply.get("ContentType"),
                      etag.strip('"') if isinstance(etag, str) else None, modified)


def _read_chunk(key: str, body: Any, done: int) -> bytes:
    """The body's next chunk (b"" at its end); StoreUnavailable when the store breaks off (botocore raises
    ResponseStreamingError, IncompleteReadError or ReadTimeoutError)."""
    try:
        return body.read(_CHUNK)
    except BotoCoreError as exc:
        raise StoreUnavailable(f"GET {key} broke off after {done} bytes: {type(exc).__name__}") from None


async def _chunks(key: str, body: Any, first: bytes) -> AsyncIterator[bytes]:
    sent = 0
    chunk = first
    try:
        while chunk:
            yield chunk
            sent += len(chunk)
            chunk = await asyncio.to_thread(_read_chunk, key, body, sent)
    finally:
        body.close()
