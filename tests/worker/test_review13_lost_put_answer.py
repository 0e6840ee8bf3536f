"""An upload whose answer was lost on the way back (a dropped connection after S3 stored the object): botocore
sends it again, the resend meets the first send's object with 412. That object is this job's own: a failure of
the job later must remove it, or a failed job leaves an image behind. An earlier run's object with the very same
bytes is not this run's, and stays."""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import ConnectionClosedError
from botocore.httpsession import URLLib3Session
from worker_harness import job, s3_client

from images.worker import handler as handler_module
from images.worker.storage import ResultStore, make_s3_client

KEY, RENDER, BODY = "results/job/0.png", "job/graph", b"the same bytes every run renders"


def _answer_lost(client: Any, key_suffix: str, *, stored: bool) -> list[str]:
    """The first PutObject of a key ending in key_suffix reaches S3 (if `stored`) and its answer is lost."""
    sends: list[str] = []

    def before_send(request: Any, **_: Any) -> None:
        if not request.url.split("?")[0].endswith(key_suffix):
            return
        sends.append(request.url)
        if len(sends) == 1:
            if stored:
                assert URLLib3Session().send(request).status_code == 200
            raise ConnectionClosedError(endpoint_url=request.url)

    client.meta.events.register("before-send.s3.PutObject", before_send)
    return sends


def _keys(storage: Any) -> list[str]:
    listing = s3_client(storage.endpoint_url).list_objects_v2(Bucket=storage.bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_an_object_its_own_lost_send_stored_counts_as_created(storage) -> None:
    client = make_s3_client(storage)
    sends = _answer_lost(client, KEY, stored=True)
    stored = ResultStore(storage, client).put_create_only(KEY, BODY, "image/png", RENDER)
    assert len(sends) == 2  # botocore sent it again, and S3 answered 412
    assert stored.created and stored.kept is None


def test_an_earlier_runs_object_with_the_same_bytes_is_not_counted_created(storage) -> None:
    earlier = ResultStore(storage).put_create_only(KEY, BODY, "image/png", RENDER)
    assert earlier.created
    client = make_s3_client(storage)
    sends = _answer_lost(client, KEY, stored=False)
    stored = ResultStore(storage, client).put_create_only(KEY, BODY, "image/png", RENDER)
    assert len(sends) == 2
    assert not stored.created  # a failure of this run must not remove what the earlier run's result names


def test_a_job_that_fails_after_a_lost_answer_leaves_no_image(comfy, models_dir, runtime_factory, storage, logs,
                                                             monkeypatch) -> None:
    runtime = runtime_factory(comfy.url, models_dir)
    monkeypatch.setattr(handler_module, "_runtime", runtime)
    _answer_lost(runtime.store._client, "/results/job-1/0.png", stored=True)
    # The second image's key holds another render's object: the job fails on it, after the first was stored.
    s3_client(storage.endpoint_url).put_object(Bucket=storage.bucket, Key="results/job-1/1.png", Body=b"foreign",
                                               Metadata={"render": "another/render"})
    out = asyncio.run(handler_module.handler(job({"prompt": "a lighthouse", "batch_size": 2})))
    assert "results/job-1/1.png already exists" in out["error"], out
    assert "upload_cleanup_failed" not in logs.events()
    assert _keys(storage) == ["results/job-1/1.png"]
