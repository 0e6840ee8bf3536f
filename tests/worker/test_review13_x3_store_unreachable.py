"""An upload that failed with the store out of reach, its check for an object an earlier send stored out of reach
too: the error says the store could not be reached to check, and that the key may be left only if an earlier send
got there. Before, it said the worker 'could not check whether it was stored all the same', as if the store had
answered and something had been stored."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError
from botocore.httpsession import URLLib3Session
from worker_harness import s3_client

from images.worker.config import StorageConfig
from images.worker.storage import ResultStore, StorageError, make_s3_client

KEY, RENDER, BODY = "results/job/0.png", "job/graph", b"the bytes this run rendered"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_store_that_cannot_be_reached_at_all_is_named_so(storage) -> None:
    away = StorageConfig(f"http://127.0.0.1:{_closed_port()}", storage.bucket, storage.access_key_id,
                         storage.secret_access_key)
    with pytest.raises(StorageError) as failed:
        ResultStore(away, make_s3_client(away)).put_create_only(KEY, BODY, "image/png", RENDER)
    message = str(failed.value)
    assert message.startswith(f"upload of {KEY} to bucket {storage.bucket} failed: Could not connect")
    assert "the store could not be reached to check whether an earlier send stored it" in message
    assert message.endswith(f"if one did, {KEY} may be left")
    assert "stored all the same" not in message


def test_an_object_stored_before_the_store_went_out_of_reach_is_named_as_maybe_left(storage) -> None:
    client = make_s3_client(storage)
    sends: list[int] = []

    def stored_then_cut_off(request: Any, **_: Any) -> None:
        if not sends:  # the first send reaches the store, its answer is lost
            sends.append(URLLib3Session().send(request).status_code)
        raise ConnectionClosedError(endpoint_url=request.url)

    def out_of_reach(request: Any, **_: Any) -> None:
        raise EndpointConnectionError(endpoint_url=request.url)

    client.meta.events.register("before-send.s3.PutObject", stored_then_cut_off)
    client.meta.events.register("before-send.s3.HeadObject", out_of_reach)
    with pytest.raises(StorageError) as failed:
        ResultStore(storage, client).put_create_only(KEY, BODY, "image/png", RENDER)
    assert sends == [200]
    message = str(failed.value)
    assert "the store could not be reached to check whether an earlier send stored it" in message
    assert message.endswith(f"if one did, {KEY} may be left")
    listing = s3_client(storage.endpoint_url).list_objects_v2(Bucket=storage.bucket)
    assert [item["Key"] for item in listing.get("Contents", [])] == [KEY]  # it was: the message named it
