"""Recovering a job whose webhook was lost after RunPod forgot it (RunPod keeps a job's output 30 minutes; /status
then answers 404). The worker stored the output it returned next to the images (results/<job_id>/outcome.json): the
recovery applies it as a COMPLETED delivery, checked against the store like a webhook's, instead of recording the
job failed. Real SQLite, moto S3, a fake RunPod data plane."""

from __future__ import annotations

import json

from service_testkit import BUCKET
from test_recover_unrecorded_runpod_id import _recover, _unrecorded


def _forgotten(svc) -> tuple[str, str]:
    """A job RunPod ran and has forgotten (its webhook was lost): (job id, RunPod id)."""
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    del svc.fake.jobs[rid]
    return job_id, rid


def _store_outcome(svc, job_id: str, document, raw: bytes | None = None) -> None:
    body = raw if raw is not None else json.dumps(document).encode()
    svc.s3.put_object(Bucket=BUCKET, Key=f"results/{job_id}/outcome.json", Body=body, ContentType="application/json")


def _output(svc, job_id: str) -> dict:
    return svc.completed(job_id, [svc.put_result(job_id)])["output"]


def _log(log_lines, event: str) -> dict:
    [line] = [json.loads(line) for line in log_lines if json.loads(line)["event"] == event]
    return line


def test_a_job_runpod_forgot_is_recovered_completed_from_the_outcome_its_worker_stored(svc, log_lines):
    job_id, rid = _forgotten(svc)
    output = _output(svc, job_id)
    _store_outcome(svc, job_id, {"runpod_job_id": rid, "output": output})

    status, body, _ = _recover(svc, job_id)

    assert (status, body) == (200, {"applied": True, "reason": "applied", "status": "completed",
                                    "runpod_status": None, "recovered_from": "result_store"})
    status, view, _ = svc.call("GET", f"/api/status/{job_id}")
    assert view["status"] == "completed" and [r["key"] for r in view["results"]] == [output["images"][0]["key"]]
    assert svc.call("GET", view["results"][0]["url"].split("http://api.test", 1)[1].split("?")[0])[0] == 200
    # RunPod's timings are gone: no run time, cost or end-to-end time is made up
    [metrics] = svc.rows("SELECT * FROM job_metrics")
    assert (metrics["status"], metrics["images"], metrics["runpod_run_duration_ms"], metrics["cost_estimate_usd"],
            metrics["e2e_ms"], metrics["worker_image_tag"]) == ("completed", 1, None, None, None,
                                                                output["worker_image_tag"])
    line = _log(log_lines, "job.finished")
    assert line["data"]["recovered_from"] == "result_store" and line["data"]["source"] == "recover"
    assert _recover(svc, job_id)[1]["reason"] == "duplicate"  # idempotent
    assert len(svc.rows("SELECT * FROM job_metrics")) == 1


def test_without_a_stored_outcome_a_forgotten_job_is_still_recorded_failed(svc):
    job_id, _ = _forgotten(svc)

    status, body, _ = _recover(svc, job_id)

    assert (status, body["status"], body.get("recovered_from")) == (200, "failed", None), body
    assert "RunPod has no record of job" in svc.job(job_id)["error"]


def test_an_outcome_whose_images_are_missing_from_the_store_fails_the_job_saying_so(svc):
    job_id, rid = _forgotten(svc)
    output = _output(svc, job_id)
    svc.s3.delete_object(Bucket=BUCKET, Key=output["images"][0]["key"])
    _store_outcome(svc, job_id, {"runpod_job_id": rid, "output": output})

    assert _recover(svc, job_id)[1]["status"] == "failed"
    assert "missing from the result store" in svc.job(job_id)["error"]


def _hostile(svc, job_id: str, rid: str, name: str) -> bytes:
    """A stored outcome the recovery must not apply (over the 1 MiB cap, not JSON, another job's images...)."""
    output = _output(svc, job_id)
    if name == "oversized":
        return json.dumps({"runpod_job_id": rid, "output": output, "padding": "x" * 1_048_576}).encode()
    if name == "another job's images":
        foreign = {**output, "images": [svc.put_result(job_id[::-1])]}
        return json.dumps({"runpod_job_id": rid, "output": foreign}).encode()
    if name == "no RunPod id":
        return json.dumps({"output": output}).encode()
    return b"\x89PNG not json at all"


def test_a_hostile_outcome_is_not_applied_and_the_job_is_recorded_failed_saying_why(svc):
    for name, expected in (("oversized", "over"), ("another job's images", "is not a result key under"),
                           ("not JSON", "is not JSON"), ("no RunPod id", "names no RunPod job")):
        job_id, rid = _forgotten(svc)
        _store_outcome(svc, job_id, None, raw=_hostile(svc, job_id, rid, name))

        status, body, _ = _recover(svc, job_id)

        assert (status, body["status"]) == (200, "failed"), (name, body)
        error = svc.job(job_id)["error"]
        assert "outcome in the result store is unusable" in error and expected in error, (name, error)
        assert svc.call("GET", f"/api/status/{job_id}")[1]["results"] == []


def test_an_outcome_of_another_runpod_job_is_not_taken_for_this_one(svc):
    job_id, rid = _forgotten(svc)
    _store_outcome(svc, job_id, {"runpod_job_id": "other-u1", "output": _output(svc, job_id)})

    assert _recover(svc, job_id)[1]["status"] == "failed"
    assert f"RunPod job other-u1's, not {rid}'s" in svc.job(job_id)["error"]


def test_an_unrecorded_runpod_id_is_recovered_from_the_stored_outcome_when_it_names_that_id(svc, log_lines):
    job_id, rid = _unrecorded(svc, log_lines)
    del svc.fake.jobs[rid]
    _store_outcome(svc, job_id, {"runpod_job_id": rid, "output": _output(svc, job_id)})

    status, wrong, _ = _recover(svc, job_id, {"runpod_job_id": "0f0f-wrong-u1"})
    assert (status, wrong["error"]["code"]) == (409, "runpod_job_mismatch") and rid in wrong["error"]["message"]
    assert svc.job(job_id)["status"] == "queued"

    status, body, _ = _recover(svc, job_id, {"runpod_job_id": rid})
    assert (status, body["status"], body["recovered_from"]) == (200, "completed", "result_store"), body
    assert svc.job(job_id)["runpod_job_id"] == rid


def test_the_stored_outcome_is_never_served_as_a_result(svc):
    job_id, rid = _forgotten(svc)
    _store_outcome(svc, job_id, {"runpod_job_id": rid, "output": _output(svc, job_id)})

    status, body, _ = svc.call("GET", f"/api/result/results/{job_id}/outcome.json")

    assert (status, body["error"]["code"]) == (404, "not_found")

