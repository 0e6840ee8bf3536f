"""A job is followed by its trace_id from the client's create to the client's status reads: the line of each
`GET /api/status/<job_id>` names the job, its trace and the job's own workflow version, not the stack's."""

from __future__ import annotations

import json

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_status_read_line_carries_the_jobs_id_trace_and_workflow_version(svc, log_lines):
    status, job, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                             "inputs": {"prompt": "a lighthouse"}},
                              headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
    assert status == 202
    [created] = [json.loads(x) for x in log_lines if '"job.submitted"' in x]
    log_lines.clear()

    status, view, _ = svc.call("GET", f"/api/status/{job['job_id']}")

    assert status == 200
    [line] = [json.loads(x) for x in log_lines]
    assert line["event"] == "http.request" and line["http"]["status"] == 200
    assert line["job_id"] == job["job_id"] and line["trace_id"] == TRACE
    assert line["workflow_version"] == view["workflow_version"] == created["workflow_version"]


def test_a_status_read_of_an_unknown_job_names_no_job(svc, log_lines):
    status, _, _ = svc.call("GET", f"/api/status/{'e' * 32}")
    assert status == 404
    [line] = [json.loads(x) for x in log_lines]
    assert line["job_id"] is None and line["trace_id"] is None
