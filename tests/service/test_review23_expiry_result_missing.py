"""A result its job recorded that the store no longer holds: when the service knows the stack's
storage.result_ttl_days, its 404 `result_missing` says which it is. Expired (the job finished that many days ago or
more: its upload was at or before that) is expected; deleted or damaged in the bucket (the job finished within the
days kept) is something to look into. It said both at once, so an operator could not tell. The `result.missing`
line carries `data.expired` (null when the service was not told the days)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from service_testkit import BUCKET

DAY_S = 86_400


def _lost_result(svc: Any, ttl_days: int | None) -> tuple[str, str, str]:
    """A completed job whose one result the bucket no longer holds: (job id, key, finished_at)."""
    svc.app.config = dataclasses.replace(svc.app.config, result_ttl_days=ttl_days)
    job_id = svc.create()["job_id"]
    image = svc.put_result(job_id, "0.png")
    status, body, _ = svc.deliver(job_id, svc.completed(job_id, [image]))
    assert status == 200 and body["status"] == "completed", body
    svc.s3.delete_object(Bucket=BUCKET, Key=image["key"])
    return job_id, image["key"], svc.job(job_id)["finished_at"]


def _missing(svc: Any, log_lines: list[str], key: str) -> tuple[str, dict[str, Any]]:
    del log_lines[:]
    status, body, _ = svc.call("GET", f"/api/result/{key}")
    assert status == 404 and body["error"]["code"] == "result_missing", body
    (line,) = [json.loads(raw) for raw in log_lines]
    assert (line["event"], line["reason"], line["http"]["status"]) == ("result.missing", "result_missing", 404)
    assert line["message"] == body["error"]["message"]
    return body["error"]["message"], line["data"]


@pytest.mark.parametrize("days_later", [7, 7.5, 40])
def test_a_result_of_a_job_finished_ttl_days_ago_or_more_is_said_to_have_expired(svc, log_lines, days_later):
    job_id, key, finished_at = _lost_result(svc, 7)
    svc.clock[0] += days_later * DAY_S

    message, data = _missing(svc, log_lines, key)

    assert message == (f"result {key} has expired: results are kept 7 days after upload and job {job_id} "
                       f"finished at {finished_at}; run the job again for a new result")
    assert data == {"key": key, "job_finished_at": finished_at, "expired": True}


@pytest.mark.parametrize("days_later", [0, 1, 6.99])
def test_a_result_gone_within_the_days_kept_is_said_to_be_deleted_or_damaged_in_the_bucket(
        svc, log_lines, days_later):
    job_id, key, finished_at = _lost_result(svc, 7)
    svc.clock[0] += days_later * DAY_S

    message, data = _missing(svc, log_lines, key)

    assert message == (f"result {key} of job {job_id} was deleted or damaged in the bucket: it finished at "
                       f"{finished_at}, within the 7 days results are kept; run the job again for a new result")
    assert data == {"key": key, "job_finished_at": finished_at, "expired": False}
    status, _, _ = svc.call("HEAD", f"/api/result/{key}")  # a HEAD is the same 404
    assert status == 404


def test_one_day_kept_is_said_in_the_singular(svc, log_lines):
    _, key, _ = _lost_result(svc, 1)
    svc.clock[0] += 2 * DAY_S
    message, data = _missing(svc, log_lines, key)
    assert "results are kept 1 day after upload" in message and data["expired"] is True


def test_a_service_not_told_the_days_keeps_saying_both_and_logs_expired_null(svc, log_lines):
    job_id, key, finished_at = _lost_result(svc, None)
    svc.clock[0] += 40 * DAY_S

    message, data = _missing(svc, log_lines, key)

    assert job_id in message and finished_at in message and "storage.result_ttl_days" in message
    assert "run the job again" in message
    assert data == {"key": key, "job_finished_at": finished_at, "expired": None}
