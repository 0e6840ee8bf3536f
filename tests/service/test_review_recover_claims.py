"""Recovering a job whose RunPod id was never recorded, with an id that is already another job's: any client
holding the API token reads every job's RunPod id from GET /api/status, so naming one must not make the job take
over that job's outcome (and its id, after which the job's own webhook is refused as a mismatch)."""

from __future__ import annotations

from test_recover_unrecorded_runpod_id import _recover, _unrecorded


def test_another_jobs_failed_runpod_id_is_refused_and_changes_nothing(svc, log_lines):
    job_id, own_rid = _unrecorded(svc, log_lines)
    other = svc.create()
    other_rid = svc.runpod_id(other["job_id"])
    svc.fake.set_status(other_rid, {"id": other_rid, "status": "FAILED", "delayTime": 5, "executionTime": 9,
                                    "error": "CUDA out of memory"})
    status, body, _ = _recover(svc, job_id, {"runpod_job_id": other_rid})
    assert status == 409 and body["error"]["code"] == "runpod_job_taken", body
    assert other["job_id"] in body["error"]["message"]
    row = svc.job(job_id)
    assert (row["status"], row["runpod_job_id"], row["error"]) == ("queued", None, None)
    assert svc.fake.status_calls == []
    # the job's own id still settles it
    svc.fake.set_status(own_rid, {"id": own_rid, "status": "FAILED", "delayTime": 5, "executionTime": 9,
                                  "error": "worker crashed"})
    status, body, _ = _recover(svc, job_id, {"runpod_job_id": own_rid})
    assert (status, body["status"]) == (200, "failed") and svc.job(job_id)["runpod_job_id"] == own_rid
