"""A job's results are each checked against their own recorded size, and a size the job never recorded is no change
(session 28 mutation audit of the 409 `result_changed` check in service/routes.py).

The tests so far completed jobs of one result with a size: a check comparing every result with the job's first
recorded size, or taking a missing or non-integer size for a change, passed them. A job of two images of different
sizes had its second answered 409; a job recorded before sizes were kept had every result refused."""

from __future__ import annotations

import json
import sqlite3

import pytest
from service_testkit import BUCKET


def _completed_job(svc, *images: bytes) -> tuple[str, list[dict]]:
    job_id = svc.create()["job_id"]
    stored = [svc.put_result(job_id, f"{n}.png", data=data) for n, data in enumerate(images)]
    status, body, _ = svc.deliver(job_id, svc.completed(job_id, stored))
    assert status == 200 and body["status"] == "completed", body
    return job_id, stored


def test_every_result_of_a_job_of_several_sizes_is_served(svc):
    _, stored = _completed_job(svc, b"\x89PNG a small image", b"\x89PNG a larger image, with many more bytes")
    for image in stored:
        for method in ("GET", "HEAD"):
            status, content, headers = svc.call(method, f"/api/result/{image['key']}")
            assert status == 200, (image, method, content)
            assert headers["content-length"] == str(image["bytes"])


@pytest.mark.parametrize("recorded", [None, True, "21"], ids=["no size", "a bool", "a string"])
def test_a_result_its_job_recorded_no_integer_size_for_is_served_not_refused(svc, recorded):
    # a row from before sizes were kept has none; a bool or a string is no size to compare
    job_id, [image] = _completed_job(svc, b"\x89PNG fake image bytes")
    results = [{**entry, "bytes": recorded} for entry in json.loads(svc.job(job_id)["results_json"])]
    if recorded is None:
        results = [{k: v for k, v in entry.items() if k != "bytes"} for entry in results]
    conn = sqlite3.connect(svc.app.config.db_path)
    with conn:
        conn.execute("UPDATE jobs SET results_json = ? WHERE id = ?", (json.dumps(results), job_id))
    conn.close()
    for method in ("GET", "HEAD"):
        status, content, _ = svc.call(method, f"/api/result/{image['key']}")
        assert status == 200, (method, content)


def test_a_result_cut_short_in_the_store_is_409_result_changed(svc):
    _, [image] = _completed_job(svc, b"\x89PNG fake image bytes")
    svc.s3.put_object(Bucket=BUCKET, Key=image["key"], Body=b"\x89PNG", ContentType="image/png")  # fewer bytes
    for method in ("GET", "HEAD"):
        status, body, _ = svc.call(method, f"/api/result/{image['key']}")
        assert status == 409, (method, body)


def test_a_result_whose_job_cannot_be_read_is_503_not_served_unchecked(svc, monkeypatch):
    _, [image] = _completed_job(svc, b"\x89PNG fake image bytes")
    real = svc.app.db.query

    async def query(sql, params=()):
        if "results_json" in sql:
            raise sqlite3.OperationalError("disk I/O error")
        return await real(sql, params)

    monkeypatch.setattr(svc.app.db, "query", query)
    for method in ("GET", "HEAD"):
        status, body, _ = svc.call(method, f"/api/result/{image['key']}")
        assert status == 503, (method, body)
        if method == "GET":
            assert body["error"]["code"] == "database_unavailable", body
