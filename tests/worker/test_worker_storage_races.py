"""Two runs of one job writing the same result key at once (RunPod runs a job at least once): the create-only
write must settle on one object, never fail a run that a retry of the write would have let through."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from images.worker.config import StorageConfig
from images.worker.storage import PUT_ATTEMPTS, ResultStore, StorageError, make_s3_client

KEY, RENDER = "results/job/0.png", "job/graph"


def _error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


class Racing:
    """moto's S3 (a real S3 protocol server), with the other run's moves played at chosen moments."""

    def __init__(self, client: Any, before_put: list, before_get: list) -> None:
        self.client, self.before_put, self.before_get = client, before_put, before_get
        self.puts = 0

    def put_object(self, **kwargs: Any) -> Any:
        self.puts += 1
        if self.before_put:
            self.before_put.pop(0)(self.client, kwargs)
        return self.client.put_object(**kwargs)

    def get_object(self, **kwargs: Any) -> Any:
        if self.before_get:
            self.before_get.pop(0)(self.client, kwargs)
        return self.client.get_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def _conflict(client: Any, kwargs: dict) -> None:
    raise _error("ConditionalRequestConflict", 409)


def _other_run_writes(client: Any, kwargs: dict) -> None:
    client.put_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"], Body=b"other", ContentType="image/png")


def _other_run_removes_it(client: Any, kwargs: dict) -> None:
    client.delete_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"])


@pytest.fixture
def s3(storage: StorageConfig) -> Any:
    return make_s3_client(storage)  # the fixture's bucket is fresh for each test


def test_a_write_that_s3_answers_conditional_request_conflict_is_written_again(storage, s3) -> None:
    racing = Racing(s3, before_put=[_conflict], before_get=[])
    stored = ResultStore(storage, racing).put_create_only(KEY, b"mine", "image/png", RENDER)
    assert stored.created and racing.puts == 2
    assert s3.get_object(Bucket=storage.bucket, Key=KEY)["Body"].read() == b"mine"


def test_a_key_the_other_run_wrote_then_removed_before_the_read_back_is_written_again(storage, s3) -> None:
    racing = Racing(s3, before_put=[_other_run_writes], before_get=[_other_run_removes_it])
    stored = ResultStore(storage, racing).put_create_only(KEY, b"mine", "image/png", RENDER)
    assert stored.created and racing.puts == 2
    assert s3.get_object(Bucket=storage.bucket, Key=KEY)["Body"].read() == b"mine"


def test_a_write_that_keeps_conflicting_fails_the_job_naming_the_key(storage, s3) -> None:
    racing = Racing(s3, before_put=[_conflict] * PUT_ATTEMPTS, before_get=[])
    with pytest.raises(StorageError, match=f"upload of {KEY} .* kept racing another write"):
        ResultStore(storage, racing).put_create_only(KEY, b"mine", "image/png", RENDER)
    assert racing.puts == PUT_ATTEMPTS
