"""The worker stores the output it returns next to the job's images (results/<job_id>/outcome.json): RunPod keeps a
job's output 30 minutes, and a job whose webhook was lost is recovered from there after that. Real handler, ComfyUI
emulator, moto S3."""

from __future__ import annotations

import json

from worker_harness import ACCESS_KEY, SECRET_KEY, job, s3_client

from images.worker.handler import run_job

OUTCOME_KEY = "results/job-1/outcome.json"


def _outcome(storage) -> dict:
    stored = s3_client(storage.endpoint_url).get_object(Bucket=storage.bucket, Key=OUTCOME_KEY)
    assert stored["ContentType"] == "application/json"
    return json.loads(stored["Body"].read())


def test_a_completed_job_stores_the_output_it_returns_with_its_runpod_id(comfy, models_dir, runtime_factory,
                                                                          storage, logs):
    output = run_job(job({"prompt": "a lighthouse", "batch_size": 2}), runtime_factory(comfy.url, models_dir))

    assert "error" not in output, output
    assert _outcome(storage) == {"runpod_job_id": "rp-job-1", "output": output}
    assert [i["key"] for i in output["images"]] == ["results/job-1/0.png", "results/job-1/1.png"]  # not an image
    text = s3_client(storage.endpoint_url).get_object(Bucket=storage.bucket, Key=OUTCOME_KEY)["Body"].read()
    assert ACCESS_KEY.encode() not in text and SECRET_KEY.encode() not in text


def test_a_job_run_again_keeps_the_outcome_its_first_run_stored(comfy, models_dir, runtime_factory, storage, logs):
    first = run_job(job(), runtime_factory(comfy.url, models_dir))
    second = run_job(job(), runtime_factory(comfy.url, models_dir))

    assert "error" not in second and second["images"] == first["images"]
    assert _outcome(storage)["output"] == first and "outcome_not_stored" not in logs.events()


def test_a_failed_job_stores_no_outcome(comfy, models_dir, runtime_factory, storage):
    out = run_job(job(workflow="no-such-workflow"), runtime_factory(comfy.url, models_dir))

    assert "error" in out
    assert "Contents" not in s3_client(storage.endpoint_url).list_objects_v2(Bucket=storage.bucket)


def test_an_outcome_that_cannot_be_stored_leaves_the_job_completed_with_a_warning(comfy, models_dir, runtime_factory,
                                                                                   storage, logs):
    # Another render's outcome holds the key: the images are stored, so the job still completes.
    s3_client(storage.endpoint_url).put_object(Bucket=storage.bucket, Key=OUTCOME_KEY, Body=b"{}",
                                               ContentType="application/json")

    output = run_job(job(), runtime_factory(comfy.url, models_dir))

    assert "error" not in output and len(output["images"]) == 1
    [line] = [line for line in logs.lines() if line["event"] == "outcome_not_stored"]
    assert line["level"] == "warning" and line["data"]["key"] == OUTCOME_KEY
