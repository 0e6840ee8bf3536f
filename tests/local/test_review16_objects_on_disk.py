"""A running local stack serves stored objects from their copy on disk, not from memory.

The local R2 is moto's S3 server in the stack host, which kept every object's body in the host's memory for as long
as the object lived (`storage.result_ttl_days`): bench/soak.py measured about 20 KB a job, 1.4 GB after a week of
10,000 jobs a day. Every object is also saved on disk (goldgate.local.object_store), so the host now reads it from
there: its memory no longer grows with what the bucket holds, and every read answers the same bytes, whole or in
ranges, before and after a restart."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from processes import kill_everything_naming
from stackfiles import stacks_file

from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

STACK = "staging"
WARM_UP = 32  # objects put first: the host's allocator reaches its working size for requests this big
OBJECTS = 128  # then measured: 64 MiB in all, four times what the host's memory moves by in handling them
OBJECT_BYTES = 512 * 1024


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    """One stack for the module (a start and stop is most of each test's CPU): the tests put distinct keys, and
    each brings the stack up itself (`up` of a running stack leaves it as it is)."""
    home = tmp_path_factory.mktemp("objects-on-disk") / "home"
    home.mkdir()
    p = LocalPlatform(home, stacks_file(home))
    try:
        yield p
    finally:
        try:
            p.down(STACK)
        finally:
            kill_everything_naming(str(home))


def _s3(platform: LocalPlatform) -> Any:
    state = platform.require_running(STACK)
    d = StackDir(platform.home, STACK)
    return boto3.client("s3", endpoint_url=state["s3_endpoint_url"], region_name="us-east-1",
                        aws_access_key_id=d.secret("s3_access_key_id"),
                        aws_secret_access_key=d.secret("s3_secret_access_key"))


def _host_rss_bytes(platform: LocalPlatform) -> int:
    pid = platform.require_running(STACK)["pid"]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for the stack host {pid}")


def _body(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * (OBJECT_BYTES // 32)


def _key(i: int) -> str:
    return f"results/{i:032x}/0.png"


def test_the_hosts_memory_does_not_grow_with_the_objects_the_bucket_holds(platform: LocalPlatform) -> None:
    platform.up(STACK)
    s3, bucket = _s3(platform), platform.spec(STACK).storage.bucket
    for i in range(OBJECTS, OBJECTS + WARM_UP):
        s3.put_object(Bucket=bucket, Key=_key(i), Body=_body(i), ContentType="image/png", IfNoneMatch="*")
    before = _host_rss_bytes(platform)

    for i in range(OBJECTS):
        s3.put_object(Bucket=bucket, Key=_key(i), Body=_body(i), ContentType="image/png", IfNoneMatch="*")
    grown = _host_rss_bytes(platform) - before

    stored = OBJECTS * OBJECT_BYTES
    assert grown < stored / 4, f"the stack host grew by {grown} bytes holding {stored} bytes of objects"
    got = s3.get_object(Bucket=bucket, Key=_key(7))
    assert got["Body"].read() == _body(7) and got["ContentType"] == "image/png"
    assert got["ContentLength"] == OBJECT_BYTES


def test_every_read_answers_the_stored_bytes_whole_in_ranges_and_after_a_restart(platform: LocalPlatform) -> None:
    platform.up(STACK)
    s3, bucket = _s3(platform), platform.spec(STACK).storage.bucket
    key = _key(OBJECTS + WARM_UP)  # a key the test above does not put (the module's stack holds its objects)
    body = os.urandom(300_001)
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/webp", IfNoneMatch="*")
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'

    for _ in range(2):  # served as put, then as put back by the next start
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
        assert head["ContentType"] == "image/webp"
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
        assert s3.get_object(Bucket=bucket, Key=key, Range="bytes=1000-1999")["Body"].read() == body[1000:2000]
        assert s3.get_object(Bucket=bucket, Key=key, Range="bytes=-5")["Body"].read() == body[-5:]
        with pytest.raises(s3.exceptions.ClientError, match="PreconditionFailed"):  # create-only, as R2
            s3.put_object(Bucket=bucket, Key=key, Body=b"other", IfNoneMatch="*")
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
        platform.down(STACK)
        platform.up(STACK)
        s3 = _s3(platform)

    s3.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key=key)
