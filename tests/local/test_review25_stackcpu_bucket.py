"""The stack host's object store: its results bucket is created with one plain S3 CreateBucket request instead of a
boto3 client built for that one call (about 0.1 s of CPU at every start), and is the one a worker's signed client
writes to; a refusal still stops the start, naming the bucket. Its server sleeps while idle and stops at once
(moto's polled for a stop every 0.5 s, which every host stop waited out)."""

from __future__ import annotations

import socketserver
import threading
import uuid

import boto3
import pytest
from botocore.config import Config as BotoConfig

from goldgate.local import stackhost

WATCH_S = 1.5  # moto's server woke 3 times in it


@pytest.fixture
def moto_server():
    server = stackhost.ObjectStoreServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield server.get_host_and_port()
    finally:
        server.stop()


def test_the_bucket_the_host_creates_is_the_one_a_signed_client_writes_to(moto_server) -> None:
    host, port = moto_server
    # moto's backend is one per process, shared with every other test of this worker: a name of this test's own,
    # and nothing left in it (a later test's bucket of the stack's name must not find this test's object)
    bucket = f"goldgate-stackcpu-{uuid.uuid4().hex[:12]}"
    stackhost.create_bucket(host, port, bucket, "0123456789abcdef0123")
    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                          aws_access_key_id="0123456789abcdef0123", aws_secret_access_key="s" * 64,
                          config=BotoConfig(signature_version="s3v4"))
    try:
        client.put_object(Bucket=bucket, Key="results/a.png", Body=b"png", IfNoneMatch="*")
        assert client.get_object(Bucket=bucket, Key="results/a.png")["Body"].read() == b"png"
        assert bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]
    finally:
        client.delete_object(Bucket=bucket, Key="results/a.png")
        client.delete_bucket(Bucket=bucket)


def test_a_bucket_the_store_refuses_stops_the_start_naming_it(moto_server) -> None:
    host, port = moto_server
    with pytest.raises(RuntimeError, match=r"refused to create the results bucket b1: HTTP 400 .*InvalidBucketName"):
        stackhost.create_bucket(host, port, "b1", "0123456789abcdef0123")  # S3 names are 3 to 63 characters


def test_the_object_store_server_sleeps_while_idle_and_its_stop_ends_its_thread(monkeypatch) -> None:
    woke: list = []  # the servers that woke: another test's still running in this process counts for nothing here
    monkeypatch.setattr(socketserver.BaseServer, "service_actions", lambda self: woke.append(self))
    server = stackhost.ObjectStoreServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        threading.Event().wait(WATCH_S)  # nothing to await: an idle server is watched for a while
    finally:
        server.stop()  # joins its thread
    mine = sum(1 for s in woke if s is server._server)
    assert mine == 0, f"the idle object store's server woke {mine} times in {WATCH_S:g} s with no client"
    assert server._thread is not None and not server._thread.is_alive()
