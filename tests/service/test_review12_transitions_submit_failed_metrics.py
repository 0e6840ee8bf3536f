"""A job RunPod never answered for (/run gave a 5xx) ends failed on our guess: its metrics row says it made no
images (0), as every job that did not complete does, and RunPod's own outcome, should it come, rewrites that row."""

from __future__ import annotations

from service_testkit import svc  # noqa: F401 - the fixture


def _create_unanswered(svc) -> str:  # noqa: F811
    svc.fake.run_mode = "error"
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                              "inputs": {"prompt": "a lighthouse"}})
    svc.fake.run_mode = "accept"
    assert status == 503, body
    return body["error"]["job_id"]


def test_a_job_whose_submission_failed_has_a_metrics_row_of_no_images(svc):  # noqa: F811
    job_id = _create_unanswered(svc)
    assert svc.job(job_id)["status"] == "failed"
    assert svc.rows("SELECT status, images FROM job_metrics WHERE job_id = ?", (job_id,)) == [
        {"status": "failed", "images": 0}]


def test_runpods_completion_of_a_job_failed_on_our_guess_counts_its_images(svc):  # noqa: F811
    job_id = _create_unanswered(svc)
    image = svc.put_result(job_id)
    payload = {**svc.completed(job_id, [image]), "id": "rp-took-it-after-all-u1"}
    status, body, _ = svc.deliver(job_id, payload)
    assert (status, body["status"], body["applied"]) == (200, "completed", True), body
    assert svc.rows("SELECT status, images FROM job_metrics WHERE job_id = ?", (job_id,)) == [
        {"status": "completed", "images": 1}]
