"""A create-only PUT whose every botocore attempt lost its answer (a dropped connection, a 5xx after S3 stored the
object): the job fails, and the object its send stored all the same must not stay behind (no job describes it, and
its retry would meet it). Only this call's sends carry its write token: an earlier run's object stays."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError
from botocore.httpsession import URLLib3Session
from worker_harness import job, s3_client

from images.worker import handler as handler_module
from images.worker.config import StorageConfig
from images.worker.storage import ResultStore, StorageError, make_s3_client

KEY, RENDER, BODY = "results/job/0.png", "job/graph", b"the bytes this run rendered"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _every_answer_lost(client: Any, operation: str, *, send: bool = True, status: int | None = None) -> list[int]:
    """Every `operation` request reaches S3 (if `send`), and its answer is lost: the connection drops, or (with
    `status`) a gateway answers that 5xx instead of S3's answer. Returns the status S3 gave each send."""
    answers: list[int] = []

    def before_send(request: Any, **_: Any) -> Any:
        if send:
            answers.append(URLLib3Session().send(request).status_code)
        if status is None:
            raise ConnectionClosedError(endpoint_url=request.url)
        body = b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"
        return AWSResponse(request.url, status, {"Content-Type": "application/xml"}, _Raw(body))

    client.meta.events.register(f"before-send.s3.{operation}", before_send)
    return answers


def _keys(storage: Any) -> list[str]:
    listing = s3_client(storage.endpoint_url).list_objects_v2(Bucket=storage.bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


@pytest.mark.parametrize("status", [None, 500], ids=["connection_dropped", "5xx"])
def test_an_upload_whose_every_answer_was_lost_removes_what_it_stored(storage, status) -> None:
    client = make_s3_client(storage)
    answers = _every_answer_lost(client, "PutObject", status=status)
    with pytest.raises(StorageError) as failed:
        ResultStore(storage, client).put_create_only(KEY, BODY, "image/png", RENDER)
    assert answers[0] == 200 and set(answers[1:]) == {412}, answers  # the first send stored it, botocore's
    # resends met it
    assert f"upload of {KEY} to bucket {storage.bucket} failed" in str(failed.value)
    assert "left" not in str(failed.value)
    assert _keys(storage) == []


def test_an_earlier_runs_object_under_the_key_stays(storage) -> None:
    assert ResultStore(storage).put_create_only(KEY, BODY, "image/png", RENDER).created
    client = make_s3_client(storage)
    answers = _every_answer_lost(client, "PutObject")
    with pytest.raises(StorageError):
        ResultStore(storage, client).put_create_only(KEY, BODY, "image/png", RENDER)
    assert len(answers) > 1 and set(answers) == {412}, answers
    assert _keys(storage) == [KEY]


def test_a_refused_upload_stored_nothing_and_checks_nothing(storage) -> None:
    client = make_s3_client(storage)
    heads = _every_answer_lost(client, "HeadObject", send=False)
    missing = StorageConfig(storage.endpoint_url, "no-such-bucket", storage.access_key_id, storage.secret_access_key)
    with pytest.raises(StorageError) as failed:
        ResultStore(missing, client).put_create_only(KEY, BODY, "image/png", RENDER)
    assert "NoSuchBucket" in str(failed.value)
    assert heads == [] and "may be left" not in str(failed.value)


def test_a_failed_cleanup_is_named_not_hidden(storage) -> None:
    client = make_s3_client(storage)
    _every_answer_lost(client, "PutObject")
    _every_answer_lost(client, "DeleteObject", send=False)
    with pytest.raises(StorageError) as failed:
        ResultStore(storage, client).put_create_only(KEY, BODY, "image/png", RENDER)
    message = str(failed.value)
    assert message.startswith(f"upload of {KEY} to bucket {storage.bucket} failed: Connection was closed")
    assert "it was stored all the same and could not be removed" in message and f"{KEY} is left" in message
    assert _keys(storage) == [KEY]


def test_a_job_whose_upload_lost_every_answer_fails_and_leaves_no_image(comfy, models_dir, runtime_factory,
                                                                        storage, monkeypatch) -> None:
    runtime = runtime_factory(comfy.url, models_dir)
    monkeypatch.setattr(handler_module, "_runtime", runtime)
    _every_answer_lost(runtime.store._client, "PutObject")
    out = asyncio.run(handler_module.handler(job({"prompt": "a lighthouse"})))
    assert out["error"].startswith("upload of results/job-1/0.png"), out
    assert _keys(storage) == []


def test_an_object_its_own_lost_send_stored_is_removed_when_it_cannot_be_read_back(storage) -> None:
    client = make_s3_client(storage)
    sends: list[int] = []

    def first_send_stored_then_dropped(request: Any, **_: Any) -> None:
        if not sends:
            sends.append(URLLib3Session().send(request).status_code)
            raise ConnectionClosedError(endpoint_url=request.url)
        sends.append(0)  # botocore's resend goes out for real and meets the object with 412

    client.meta.events.register("before-send.s3.PutObject", first_send_stored_then_dropped)
    _every_answer_lost(client, "GetObject", send=False)
    with pytest.raises(StorageError) as failed:
        ResultStore(storage, client).put_create_only(KEY, BODY, "image/png", RENDER)
    assert sends == [200, 0]
    assert "could not be read back" in str(failed.value) and "left" not in str(failed.value)
    assert _keys(storage) == []
