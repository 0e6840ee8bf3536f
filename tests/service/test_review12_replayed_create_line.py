"""A create replayed under its Idempotency-Key is a line of the job it replays: it carries that job's
workflow_version and worker_image_tag, not those of the release serving the replay (a client retrying across a
deploy would otherwise put the old job's replay under the new release)."""

from __future__ import annotations

import json

BODY = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}
EARLIER_IMAGE = "local/worker@sha256:" + "e" * 64


def test_a_replayed_create_logs_the_replayed_jobs_release(svc, log_lines):
    headers = {"idempotency-key": "replay-across-a-deploy"}
    status, first, _ = svc.call("POST", "/api/queue/create", BODY, headers=headers)
    assert status == 202
    # the job was created by an earlier release than the one now serving
    svc.run(svc.db.execute("UPDATE jobs SET worker_image_tag = ?, workflow_version = ? WHERE id = ?",
                           (EARLIER_IMAGE, "sdxl-txt2img@0.9.0", first["job_id"])))
    status, second, replay_headers = svc.call("POST", "/api/queue/create", BODY, headers=headers)
    assert status == 202 and replay_headers["idempotent-replayed"] == "true" and second == first

    lines = [json.loads(line) for line in log_lines]
    replayed = [line for line in lines if line["event"] == "job.create_replayed"]
    assert len(replayed) == 1
    job = svc.job(first["job_id"])
    assert replayed[0]["worker_image_tag"] == EARLIER_IMAGE
    assert replayed[0]["workflow_version"] == job["workflow_version"] == "sdxl-txt2img@0.9.0"
    assert replayed[0]["trace_id"] == first["trace_id"]
