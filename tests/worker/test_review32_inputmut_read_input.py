"""Mutation audit of the worker's read of a job's input image (images/worker/storage.py read_input): what it takes
(the three types, however their Content-Type is spelled; up to the API's own byte limit, to the byte), what it
refuses as the job's input (missing, too large) rather than as the store failing, and that it never reads more
than its limit, nor keeps the connection, nor returns a body cut short."""

from __future__ import annotations

import io
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from test_review32_inputwk_input_images import KEY_A, _png, _put
from worker_harness import s3_client

from images.worker.config import StorageConfig
from images.worker.storage import InputImageError, ResultStore, StorageError
from service.config import MAX_INPUT_BYTES as API_MAX_INPUT_BYTES

PNG = _png(12, 8, (1, 2, 3))


class Body:
    """An S3 object body as botocore hands it over: reads counted, closing seen."""

    def __init__(self, data: bytes, fails: OSError | None = None) -> None:
        self._data, self._fails = io.BytesIO(data), fails
        self.asked: list[int | None] = []
        self.closed = False

    def read(self, amt: int | None = None) -> bytes:
        self.asked.append(amt)
        if self._fails is not None:
            raise self._fails
        return self._data.read(amt)

    def close(self) -> None:
        self.closed = True


class OneObject:
    """A bucket client that answers every GetObject with `answer` (or raises `error`), as an S3 endpoint might."""

    def __init__(self, answer: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.answer, self.error = answer, error

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return dict(self.answer or {})


def _store(client: Any, storage: StorageConfig | None = None) -> ResultStore:
    return ResultStore(storage or StorageConfig("http://127.0.0.1:9", "results", "k", "s"), client)


def test_a_404_without_an_s3_error_code_is_the_input_missing_not_the_store_failing() -> None:
    missing = ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "GetObject")
    with pytest.raises(InputImageError, match="is not in bucket results: it was never uploaded there"):
        _store(OneObject(error=missing)).read_input(KEY_A)


@pytest.mark.parametrize("content_type", ["Image/PNG", "image/png; charset=binary", "IMAGE/PNG ;x=1"])
def test_a_content_type_spelled_otherwise_is_still_the_png_it_names(storage: StorageConfig, content_type: str) -> None:
    _put(storage, KEY_A, PNG, content_type)
    image = _store(s3_client(storage.endpoint_url), storage).read_input(KEY_A)
    assert image.content_type == "image/png" and image.suffix == ".png" and image.data == PNG


def test_an_object_of_exactly_the_limit_is_read_and_one_byte_more_is_refused(storage: StorageConfig) -> None:
    store = _store(s3_client(storage.endpoint_url), storage)
    _put(storage, KEY_A, PNG)
    assert store.read_input(KEY_A, max_bytes=len(PNG)).data == PNG
    with pytest.raises(InputImageError, match=f"is {len(PNG)} bytes, over the worker's limit of {len(PNG) - 1}"):
        store.read_input(KEY_A, max_bytes=len(PNG) - 1)


def test_the_worker_reads_every_image_the_api_takes(storage: StorageConfig) -> None:
    largest = PNG + b"\0" * (API_MAX_INPUT_BYTES - len(PNG))  # POST /api/inputs' default and greatest limit
    _put(storage, KEY_A, largest)
    assert len(_store(s3_client(storage.endpoint_url), storage).read_input(KEY_A).data) == API_MAX_INPUT_BYTES


def test_a_body_longer_than_the_limit_without_a_declared_size_is_refused_having_read_one_byte_past_it() -> None:
    body = Body(PNG + b"\0" * 1000)
    with pytest.raises(InputImageError, match=f"is over the worker's limit of {len(PNG)} bytes"):
        _store(OneObject({"Body": body, "ContentType": "image/png"})).read_input(KEY_A, max_bytes=len(PNG))
    assert body.asked == [len(PNG) + 1] and body.closed


def test_a_body_shorter_than_its_declared_size_is_the_store_failing_not_an_image() -> None:
    body = Body(PNG[:10])
    with pytest.raises(StorageError, match=f"was cut short: 10 of its {len(PNG)} bytes arrived") as caught:
        _store(OneObject({"Body": body, "ContentType": "image/png", "ContentLength": len(PNG)})).read_input(KEY_A)
    assert not isinstance(caught.value, InputImageError) and body.closed


def test_a_connection_reset_while_reading_is_the_store_failing_and_the_body_is_closed() -> None:
    body = Body(PNG, fails=ConnectionResetError(104, "Connection reset by peer"))
    with pytest.raises(StorageError, match=f"reading input image {KEY_A} from bucket results failed"):
        _store(OneObject({"Body": body, "ContentType": "image/png", "ContentLength": len(PNG)})).read_input(KEY_A)
    assert body.closed


def test_an_endpoint_that_cannot_be_reached_is_the_store_failing() -> None:
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:9/results/inputs")
    with pytest.raises(StorageError, match=f"reading input image {KEY_A} from bucket results failed") as caught:
        _store(OneObject(error=down)).read_input(KEY_A)
    assert not isinstance(caught.value, InputImageError)


@pytest.mark.parametrize("code", ["InternalError", "AccessDenied", "SlowDown"])
def test_any_other_s3_error_is_the_store_failing_not_the_jobs_input(code: str) -> None:
    failed = ClientError({"Error": {"Code": code, "Message": "no"}}, "GetObject")
    with pytest.raises(StorageError, match=f"from bucket results failed: {code}") as caught:
        _store(OneObject(error=failed)).read_input(KEY_A)
    assert not isinstance(caught.value, InputImageError)  # a job failed for it can be run again
