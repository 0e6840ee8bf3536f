"""A job whose RunPod id was never recorded (recording it failed, or /run's answer was lost) but which RunPod ran:
its worker stored the outcome, naming RunPod's id, next to the images. A recovery without an id must find the job
there, not record it failed "with nothing run" (or leave it failed) while its images sit in R2.
Real SQLite, moto S3, a fake RunPod data plane."""

from __future__ import annotations

import json

from service_testkit import BUCKET
from test_recover_expired_ttl import TTL_S
from test_recover_unrecorded_runpod_id import _recover, _unrecorded

DAY_S = 86_400


def _store_outcome(svc, job_id: str, rid: str) -> dict:
    output = svc.completed(job_id, [svc.put_result(job_id)])["output"]
    svc.s3.put_object(Bucket=BUCKET, Key=f"results/{job_id}/outcome.json", ContentType="application/json",
                      Body=json.dumps({"runpod_job_id": rid, "output": output}).encode())
    return output


def test_an_unrecorded_job_runpod_forgot_is_recovered_completed_from_its_stored_outcome_without_an_id(svc, log_lines):
    job_id, rid = _unrecorded(svc, log_lines)
    output = _store_outcome(svc, job_id, rid)
    del svc.fake.jobs[rid]
    svc.clock[0] += TTL_S + DAY_S  # past the time from which the recovery used to record it failed

    status, body, _ = _recover(svc, job_id)

    assert (status, body["status"], body.get("recovered_from")) == (200, "completed", "result_store"), body
    row = svc.job(job_id)
    assert (row["runpod_job_id"], row["error"]) == (rid, None)
    assert [r["key"] for r in json.loads(row["results_json"])] == [output["images"][0]["key"]]
    [metrics] = svc.rows("SELECT * FROM job_metrics")
    assert (metrics["status"], metrics["images"]) == ("completed", 1)
    assert _recover(svc, job_id)[1]["reason"] == "duplicate"


def test_an_unrecorded_job_runpod_still_knows_is_recovered_from_runpod_with_the_id_its_outcome_names(svc, log_lines):
    job_id, rid = _unrecorded(svc, log_lines)
    output = _store_outcome(svc, job_id, rid)
    svc.fake.set_status(rid, {"id": rid, "status": "COMPLETED", "delayTime": 800, "executionTime": 2500,
                              "output": output})

    status, body, _ = _recover(svc, job_id)

    assert (status, body["status"], body["runpod_status"]) == (200, "completed", "COMPLETED"), body
    assert svc.fake.status_calls == [rid]
    [metrics] = svc.rows("SELECT * FROM job_metrics")
    assert metrics["runpod_run_duration_ms"] == 2500  # RunPod's own timings, not the store's nulls


def test_a_job_failed_when_run_did_not_answer_completes_from_the_outcome_its_worker_stored(svc):
    svc.fake.run_mode = "error"  # /run answers 5xx: RunPod may have taken the job, and here it did
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                             "inputs": {"prompt": "a lighthouse"}})
    assert status == 503, body
    job_id = body["error"]["job_id"]
    _store_outcome(svc, job_id, "0f0f0f0f-aaaa-bbbb-cccc-000000000002-u1")  # RunPod has forgotten it since
    svc.clock[0] += TTL_S + DAY_S

    status, body, _ = _recover(svc, job_id)

    assert (status, body["applied"], body["status"]) == (200, True, "completed"), body
    [metrics] = svc.rows("SELECT * FROM job_metrics")
    assert (metrics["status"], metrics["images"]) == ("completed", 1)


def test_an_outcome_naming_another_jobs_runpod_id_is_not_adopted(svc, log_lines):
    job_id, _ = _unrecorded(svc, log_lines)
    other = svc.create()["job_id"]
    _store_outcome(svc, job_id, svc.runpod_id(other))

    status, body, _ = _recover(svc, job_id)

    assert (status, body["error"]["code"]) == (409, "runpod_job_taken"), body
    assert f"results/{job_id}/outcome.json names" in body["error"]["message"]  # where the id came from
    assert svc.job(job_id)["status"] == "queued" and svc.fake.status_calls == []


def test_an_unusable_outcome_of_a_job_without_a_runpod_id_is_named_in_its_failure(svc, log_lines):
    job_id, rid = _unrecorded(svc, log_lines)
    svc.s3.put_object(Bucket=BUCKET, Key=f"results/{job_id}/outcome.json", Body=b"\x89PNG not json",
                      ContentType="application/json")
    del svc.fake.jobs[rid]
    svc.clock[0] += TTL_S + DAY_S

    status, body, _ = _recover(svc, job_id)

    assert (status, body["status"]) == (200, "failed"), body
    error = svc.job(job_id)["error"]
    assert "no RunPod id was recorded" in error and "outcome in the result store is unusable" in error, error
    assert "outcome.json is not JSON" in error
