"""An R2 stand-in for tests: moto's S3 server on 127.0.0.1 with a bucket of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from moto.server import ThreadedMotoServer

from goldgate.cloudflare.r2 import R2Admin


@contextmanager
def r2_admin(prefix: str = "goldgate-test") -> Iterator[R2Admin]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto's backends are per process, shared by every server: a bucket of our own keeps tests apart.
    bucket = f"{prefix}-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="k",
                 aws_secret_access_key="s").create_bucket(Bucket=bucket)
    try:
        yield R2Admin(url, bucket, "k", "s")
    finally:
        server.stop()
