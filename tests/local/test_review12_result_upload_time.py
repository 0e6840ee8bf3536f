"""A result object's Last-Modified is its upload time, as R2 keeps it, also after the stack restarts. The local R2
(moto) keeps objects in memory and goldgate puts the saved ones back when the stack starts: each came back stamped
with the restart's time, so an image uploaded at 20:14:30 answered `Last-Modified` 20:18:26 after a restart."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import boto3
import httpx
from botocore.config import Config as BotoConfig

from goldgate import spec as specs
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

STACK = "prod"
JOB = "0123456789abcdef0123456789abcdef"
# A result saved by an earlier goldgate, whose records did not carry the upload time: its body's mtime says it.
# within storage.result_ttl_days: an older result expires
EARLIER = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)


def _upload(platform: LocalPlatform, key: str, body: bytes) -> None:
    state = platform.require_running(STACK)
    d = StackDir(platform.home, STACK)
    s3 = boto3.client("s3", endpoint_url=state["s3_endpoint_url"], region_name="us-east-1",
                      aws_access_key_id=d.secret("s3_access_key_id"),
                      aws_secret_access_key=d.secret("s3_secret_access_key"),
                      config=BotoConfig(signature_version="s3v4"))
    s3.put_object(Bucket=specs.load_local(STACK).storage.bucket, Key=key, Body=body, ContentType="image/png",
                  IfNoneMatch="*")  # as the worker uploads: create-only


def _last_modified(platform: LocalPlatform, key: str) -> str:
    """The Last-Modified the API's result path answers for `key` (the header a client sees)."""
    state = platform.require_running(STACK)
    resp = httpx.head(f"{state['api_url']}/api/result/{key}", timeout=30,
                      headers={"Authorization": f"Bearer {platform.api_token(STACK)}"})
    assert resp.status_code == 200, resp.text
    return resp.headers["last-modified"]


def _save_as_an_earlier_goldgate(home: Path, key: str, body: bytes) -> None:
    saved = StackDir(home, STACK).objects_dir / specs.load_local(STACK).storage.bucket
    saved.mkdir(parents=True)
    name = saved / ("e" * 64)
    name.with_suffix(".bin").write_bytes(body)
    name.with_suffix(".json").write_text(json.dumps({"key": key, "metadata": {"Content-Type": "image/png"}}))
    os.utime(name.with_suffix(".bin"), (EARLIER.timestamp(), EARLIER.timestamp()))


def test_a_result_keeps_its_upload_time_as_last_modified_across_a_restart(home: Path) -> None:
    platform = LocalPlatform(home)
    earlier_key = f"results/{JOB}/earlier.png"
    _save_as_an_earlier_goldgate(home, earlier_key, b"\x89PNG earlier")
    key = f"results/{JOB}/0.png"
    try:
        platform.up(STACK)
        _upload(platform, key, b"\x89PNG result")
        uploaded = _last_modified(platform, key)
        platform.down(STACK)
        # Into a later second than the upload's (Last-Modified counts whole seconds), so a restart's time differs.
        while int(time.time()) <= parsedate_to_datetime(uploaded).timestamp() + 1:
            time.sleep(0.1)
        platform.up(STACK)

        assert _last_modified(platform, key) == uploaded
        assert parsedate_to_datetime(_last_modified(platform, earlier_key)) == EARLIER
    finally:
        platform.down(STACK)
