"""What a failed job may leave in the store, and what the operator is told about it: a create-only PUT answered
HTTP 500 on its only attempt may have stored the object all the same (S3 answers 500 after a write it completed;
botocore sends no retry once its retry quota is spent), and a cleanup that cannot delete is named in a warning."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.httpsession import URLLib3Session
from worker_harness import job, s3_client

from images.worker.config import StorageConfig
from images.worker.handler import run_job
from images.worker.storage import ResultStore, StorageError

KEY, RENDER, BODY = "results/job/0.png", "job/graph", b"the bytes this run rendered"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _keys(storage: StorageConfig) -> list[str]:
    listing = s3_client(storage.endpoint_url).list_objects_v2(Bucket=storage.bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_a_put_answered_500_on_its_only_attempt_leaves_no_object(storage) -> None:
    # The store's own client settings, but no retry: what botocore does once its retry quota is spent.
    config = Config(signature_version="s3v4", request_checksum_calculation="when_required",
                    response_checksum_validation="when_required", retries={"total_max_attempts": 1, "mode": "standard"})
    client = boto3.client("s3", endpoint_url=storage.endpoint_url, region_name="auto",
                          aws_access_key_id=storage.access_key_id,
                          aws_secret_access_key=storage.secret_access_key, config=config)

    def stored_then_500(request: Any, **_: Any) -> Any:
        assert URLLib3Session().send(request).status_code == 200  # S3 stored it ...
        body = b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"
        return AWSResponse(request.url, 500, {"Content-Type": "application/xml"}, _Raw(body))  # ... then 500

    client.meta.events.register("before-send.s3.PutObject", stored_then_500)
    with pytest.raises(StorageError, match="upload of results/job/0.png .* failed: InternalError"):
        ResultStore(storage, client).put_create_only(KEY, BODY, "image/png", RENDER)
    assert _keys(storage) == []


def test_a_cleanup_that_cannot_delete_names_the_image_it_leaves(comfy, models_dir, runtime_factory, storage, logs):
    runtime = runtime_factory(comfy.url, models_dir)
    client = runtime.store._client
    put = client.put_object

    def put_refused_on_the_second(**kwargs: Any) -> Any:
        if kwargs["Key"].endswith("/1.png"):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                               "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject")
        return put(**kwargs)

    def delete_refused(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                           "ResponseMetadata": {"HTTPStatusCode": 403}}, "DeleteObject")

    client.put_object, client.delete_object = put_refused_on_the_second, delete_refused
    out = run_job(job({"prompt": "a lighthouse", "batch_size": 2}), runtime)
    assert out["error"].startswith("upload of results/job-1/1.png"), out
    assert _keys(storage) == ["results/job-1/0.png"]  # the cleanup could not remove it ...
    (warning,) = [line for line in logs.lines() if line["event"] == "upload_cleanup_failed"]
    assert warning["data"]["keys"] == ["results/job-1/0.png"]  # ... and the operator is told which key stays
    assert "results/job-1/0.png" in warning["message"]
