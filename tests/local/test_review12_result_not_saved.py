"""An upload the local R2 could not keep on disk (a full disk, a file in the way) must fail, not be served until
the next restart. moto held the object in memory before it was saved: the PUT was answered 500, the uploader's
retry of its create-only write was answered 412 (the object exists), which the worker takes for its own earlier
write, so the job completed; and its result was gone (404) once the stack restarted."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from goldgate import spec as specs
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

STACK = "prod"
KEY = "results/0123456789abcdef0123456789abcdef/0.png"


def _s3(platform: LocalPlatform) -> Any:  # a boto3 S3 client
    state = platform.require_running(STACK)
    d = StackDir(platform.home, STACK)
    return boto3.client("s3", endpoint_url=state["s3_endpoint_url"], region_name="us-east-1",
                        aws_access_key_id=d.secret("s3_access_key_id"),
                        aws_secret_access_key=d.secret("s3_secret_access_key"),
                        config=BotoConfig(signature_version="s3v4", retries={"max_attempts": 3, "mode": "standard"}))


def _served(platform: LocalPlatform) -> int:
    """What the API's result path answers for KEY (its status)."""
    state = platform.require_running(STACK)
    return httpx.head(f"{state['api_url']}/api/result/{KEY}", timeout=30,
                      headers={"Authorization": f"Bearer {platform.api_token(STACK)}"}).status_code


def test_an_upload_that_could_not_be_saved_fails_and_is_not_served(home: Path) -> None:
    platform = LocalPlatform(home)
    saved = StackDir(home, STACK).objects_dir / specs.load_local(STACK).storage.bucket
    # In the way of the object's body as it is written: the write fails as on a full disk.
    obstacle = saved / f"{hashlib.sha256(KEY.encode()).hexdigest()}.bin.tmp"
    obstacle.mkdir(parents=True)
    try:
        platform.up(STACK)
        with pytest.raises(ClientError):  # the worker's own client, create-only with retries: the upload fails
            _s3(platform).put_object(Bucket=specs.load_local(STACK).storage.bucket, Key=KEY, Body=b"\x89PNG",
                                     ContentType="image/png", IfNoneMatch="*")
        assert _served(platform) == 404, "an object that is not on disk is lost at the next restart"

        obstacle.rmdir()  # space again: the next upload is kept, and outlives a restart
        _s3(platform).put_object(Bucket=specs.load_local(STACK).storage.bucket, Key=KEY, Body=b"\x89PNG",
                                 ContentType="image/png", IfNoneMatch="*")
        platform.down(STACK)
        platform.up(STACK)
        assert _served(platform) == 200
    finally:
        platform.down(STACK)
