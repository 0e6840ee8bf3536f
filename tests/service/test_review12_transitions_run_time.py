"""A recovery may find a job running: RunPod's /status answer then carries how long it has run so far. When the job
later ends with a delivery that has no executionTime (RunPod forgot the job, and its outcome is read from the result
store, or it is recorded failed), its run time is unknown and stays null (docs/INTERFACES.md): the figure of the
earlier answer is not the job's run time, and would skew the run-time percentiles."""

from __future__ import annotations

import json

from service_testkit import BUCKET, svc  # noqa: F401 - the fixture


def _found_running(svc, run_so_far_ms: int = 5000) -> tuple[str, str]:  # noqa: F811
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    svc.fake.set_status(rid, {"id": rid, "status": "IN_PROGRESS", "delayTime": 300, "executionTime": run_so_far_ms})
    status, body, _ = svc.call("POST", f"/api/admin/recover/{job_id}")
    assert (status, body["status"]) == (200, "in_progress"), body
    return job_id, rid


def _run_times(svc, job_id: str) -> tuple[int | None, int | None, int | None]:  # noqa: F811
    """(the job's run time, its status view's, its metrics row's)."""
    _, view, _ = svc.call("GET", f"/api/status/{job_id}")
    [metric] = svc.rows("SELECT runpod_run_duration_ms FROM job_metrics WHERE job_id = ?", (job_id,))
    return svc.job(job_id)["runpod_run_duration_ms"], view["timings"]["run_ms"], metric["runpod_run_duration_ms"]


def test_a_job_completed_from_its_stored_outcome_after_a_recovery_found_it_running_has_no_run_time(svc):  # noqa: F811
    job_id, rid = _found_running(svc)
    image = svc.put_result(job_id)
    svc.s3.put_object(Bucket=BUCKET, Key=f"results/{job_id}/outcome.json", ContentType="application/json",
                      Body=json.dumps({"runpod_job_id": rid, "output": {"images": [image]}}).encode())
    svc.fake.jobs.pop(rid)  # RunPod keeps a job's outcome 30 minutes
    status, body, _ = svc.call("POST", f"/api/admin/recover/{job_id}")
    assert (status, body["status"], body.get("recovered_from")) == (200, "completed", "result_store"), body
    assert _run_times(svc, job_id) == (None, None, None)
    assert svc.job(job_id)["cost_estimate_usd"] is None


def test_a_running_job_runpod_forgot_is_recorded_failed_with_no_run_time(svc):  # noqa: F811
    job_id, rid = _found_running(svc)
    svc.fake.jobs.pop(rid)
    status, body, _ = svc.call("POST", f"/api/admin/recover/{job_id}")
    assert (status, body["status"], body["applied"]) == (200, "failed", True), body
    assert _run_times(svc, job_id) == (None, None, None)


def test_the_webhook_ending_a_job_found_running_gives_its_run_time(svc):  # noqa: F811
    job_id, _ = _found_running(svc)
    status, body, _ = svc.deliver(job_id, svc.completed(job_id, [svc.put_result(job_id)], execution_ms=7200))
    assert (status, body["status"]) == (200, "completed"), body
    assert _run_times(svc, job_id) == (7200, 7200, 7200)
