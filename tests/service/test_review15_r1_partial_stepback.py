"""A clock step back shorter than the job's age (the age stays positive) made the service drop RunPod's run time
(longer than the job existed by its clock) and then record the shortened age as the job's end-to-end time: 60 s
for a job RunPod ran for 595 s. The e2e check now weighs RunPod's own figures, bounded by how long a job lives."""

from __future__ import annotations

import json


def test_a_step_back_shorter_than_the_job_leaves_no_false_e2e(svc, log_lines):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    svc.clock[0] += 600 - 540  # 600 s of real time; the service's clock stepped back 540 s meanwhile
    status, _, _ = svc.deliver(job["job_id"], svc.completed(job["job_id"], [image], execution_ms=590_000,
                                                            delay_ms=5_000))
    assert status == 200
    [row] = svc.rows("SELECT * FROM job_metrics WHERE job_id = ?", (job["job_id"],))
    finished = [line for line in map(json.loads, log_lines) if line["event"] == "job.finished"]
    assert row["e2e_ms"] is None, "a 60 s end-to-end time for a job RunPod ran for 595 s"
    assert finished[0]["data"]["clock_suspect"]["runpod_ms"] == 595_000
    assert finished[0]["e2e_ms"] is None
