"""Every line of a job names the job's own workflow version, the one the service logged for it: a job the worker
rejects for a version it does not ship says which version the job asked for, not the image's release version."""

from __future__ import annotations

from worker_harness import job

from images.worker.handler import run_job


def test_a_rejected_job_names_the_workflow_version_it_asked_for(comfy, models_dir, runtime_factory, logs):
    runtime = runtime_factory(comfy.url, models_dir)

    out = run_job(job(workflow_version="sdxl-txt2img@9.0.0"), runtime)

    assert "version mismatch" in out["error"]
    lines = {line["event"]: line for line in logs.lines() if line["job_id"] == "job-1"}
    assert lines["job_started"]["workflow_version"] == "sdxl-txt2img@9.0.0"
    assert lines["job_rejected"]["workflow_version"] == "sdxl-txt2img@9.0.0"


def test_every_line_of_a_job_that_runs_names_its_workflow_version(comfy, models_dir, runtime_factory, logs):
    runtime = runtime_factory(comfy.url, models_dir)

    run_job(job(), runtime)

    versions = {line["event"]: line["workflow_version"] for line in logs.lines() if line["job_id"] == "job-1"}
    assert "job_started" in versions and "job_completed" in versions
    assert set(versions.values()) == {"sdxl-txt2img@1.0.0"}
