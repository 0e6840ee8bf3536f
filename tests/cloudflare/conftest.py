"""Loopback stand-ins for Cloudflare: the D1 REST API (goldgate.cloudflare.d1_standin) and R2 (moto's S3)."""

from __future__ import annotations

import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from goldgate.cloudflare.r2 import R2Admin


@pytest.fixture
def r2():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto's backends are per process, shared by every server: a bucket of our own keeps tests apart.
    bucket = f"goldgate-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="k",
                 aws_secret_access_key="s").create_bucket(Bucket=bucket)
    try:
        yield R2Admin(url, bucket, "k", "s")
    finally:
        server.stop()
