"""Review 14 (m1): state rules of service/transitions.py and service/results.py that no test held (mutation audit)."""

from __future__ import annotations

import pytest
from service_testkit import svc  # noqa: F401 - the fixture

from service.results import MAX_IMAGES, ResultRejected, parse_images


def _outcome(body: dict) -> tuple[str, str]:
    return body["reason"], body["status"]


def test_a_delivery_repeated_after_a_later_one_was_applied_is_still_a_duplicate(svc):  # noqa: F811
    # Two COMPLETED reports of one attempt (a webhook, then a recovery's differing /status answer), both rejected: the
    # image was not in the store yet. The first arrives again once the image is there: it was seen, so it changes
    # nothing (the job's last delivery is the second one, so only the record of deliveries tells it was seen).
    job = svc.create()["job_id"]
    image = {"key": f"results/{job}/0.png", "content_type": "image/png", "bytes": 21}
    first = svc.completed(job, [image], execution_ms=2500)
    second = svc.completed(job, [image], execution_ms=2600)
    assert _outcome(svc.deliver(job, first)[1]) == ("applied", "failed")
    assert _outcome(svc.deliver(job, second)[1]) == ("applied", "failed")
    svc.put_result(job)  # 21 bytes, image/png: the report would match the store now
    before = svc.job(job)
    assert svc.deliver(job, first)[1] == {"applied": False, "reason": "duplicate", "status": "failed"}
    assert svc.job(job) == before
    assert svc.rows("SELECT status FROM job_metrics WHERE job_id = ?", (job,)) == [{"status": "failed"}]


def test_a_content_type_reported_in_another_case_matches_the_stored_type(svc):  # noqa: F811
    # Media types are case-insensitive (RFC 9110 8.3.1): a worker reporting IMAGE/PNG for a stored image/png is right.
    job = svc.create()["job_id"]
    image = {**svc.put_result(job), "content_type": "Image/PNG"}
    assert svc.deliver(job, svc.completed(job, [image]))[1] == {"applied": True, "reason": "applied",
                                                                 "status": "completed"}
    assert svc.job(job)["error"] is None


def test_a_worker_may_report_exactly_max_images_and_one_more_fails_the_job():
    job = "c" * 32
    images = [{"key": f"results/{job}/{i}.png", "content_type": "image/png", "bytes": 10} for i in range(MAX_IMAGES + 1)]
    assert len(parse_images(job, {"images": images[:MAX_IMAGES]})) == MAX_IMAGES
    with pytest.raises(ResultRejected, match=f"reports {MAX_IMAGES + 1} images; a job may report at most {MAX_IMAGES}"):
        parse_images(job, {"images": images})


def test_a_failed_jobs_error_is_kept_to_2000_characters(svc):  # noqa: F811
    # The job's row must fit D1's 2,000,000-byte limit whatever RunPod sends: a refused write would be a 500 on every
    # retry of the webhook, and the job would never settle.
    job = svc.create()["job_id"]
    error = "Traceback: " + "x" * 50_000
    body = svc.deliver(job, {"id": svc.runpod_id(job), "status": "FAILED", "executionTime": 1000, "error": error})[1]
    assert body == {"applied": True, "reason": "applied", "status": "failed"}
    view = svc.call("GET", f"/api/status/{job}")[1]
    assert view["error"] == error[:2000]


def test_a_completed_differing_from_a_rejected_one_only_in_its_output_is_a_new_delivery(svc):  # noqa: F811
    # A delivery is identified by all its parts, the output too: a second COMPLETED report of the job (no timings, as a
    # recovery's may have none) that names the image actually stored is applied, not taken for the first.
    job = svc.create()["job_id"]
    missing = {"key": f"results/{job}/missing.png", "content_type": "image/png", "bytes": 21}
    first = {"id": svc.runpod_id(job), "status": "COMPLETED", "output": {"images": [missing]}}
    assert _outcome(svc.deliver(job, first)[1]) == ("applied", "failed")
    second = {**first, "output": {"images": [svc.put_result(job)]}}
    assert svc.deliver(job, second)[1] == {"applied": True, "reason": "applied", "status": "completed"}
