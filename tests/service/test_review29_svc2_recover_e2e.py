"""A job an operator's recovery settled (`goldgate recover`: POST /api/admin/recover/<job_id>) records no end-to-end
time: RunPod's /status answer tells that the job ended, not when, and the time until the recovery (hours, for a
webhook lost overnight) would top its release's P95 and P99. Its status, its job_metrics row and its job.finished
line say null; the metrics report leaves it out of the e2e percentiles and the versions' mean, and counts it all the
same. Real SQLite, moto S3, a fake RunPod data plane."""

from __future__ import annotations

import json


def _finished(log_lines, job_id: str) -> dict:
    (line,) = [line for line in map(json.loads, log_lines)
               if line["event"] == "job.finished" and line["job_id"] == job_id]
    return line


def test_a_job_a_recovery_settled_hours_later_has_no_e2e_and_leaves_the_percentiles_alone(svc, log_lines):
    webhooked = svc.create()["job_id"]
    svc.clock[0] += 2
    assert svc.deliver(webhooked, svc.completed(webhooked, [svc.put_result(webhooked)]))[1]["reason"] == "applied"

    recovered = svc.create("a harbour")["job_id"]
    svc.clock[0] += 8 * 3600  # its webhook was lost overnight: the operator recovers it in the morning
    svc.fake.set_status(svc.runpod_id(recovered), svc.completed(recovered, [svc.put_result(recovered)]))
    status, body, _ = svc.call("POST", f"/api/admin/recover/{recovered}")
    assert (status, body["applied"], body["status"]) == (200, True, "completed"), body

    _, read, _ = svc.call("GET", f"/api/status/{recovered}")
    assert read["timings"]["e2e_ms"] is None and read["timings"]["run_ms"] == 2500
    rows = {r["job_id"]: r["e2e_ms"] for r in svc.rows("SELECT job_id, e2e_ms FROM job_metrics")}
    assert rows == {webhooked: 2000, recovered: None}
    line = _finished(log_lines, recovered)
    assert line["data"]["source"] == "recover" and line["e2e_ms"] is None
    assert _finished(log_lines, webhooked)["e2e_ms"] == 2000

    status, report, _ = svc.call("GET", "/api/metrics", query="by=workflow_version")
    assert status == 200
    assert report["overall"]["count"] == 2 and report["overall"]["completed"] == 2
    assert report["overall"]["e2e_ms"] == {"p50": 2000, "p95": 2000, "p99": 2000}
    (version,) = report["by_workflow_version"]
    assert version["count"] == 2 and version["e2e_ms_mean"] == 2000


def test_a_webhook_still_times_a_job_a_recovery_found_running(svc, log_lines):
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    svc.clock[0] += 30
    svc.fake.set_status(rid, {"id": rid, "status": "IN_PROGRESS", "delayTime": 900})
    status, body, _ = svc.call("POST", f"/api/admin/recover/{job_id}")
    assert (status, body["status"]) == (200, "in_progress"), body
    svc.clock[0] += 10
    assert svc.deliver(job_id, svc.completed(job_id, [svc.put_result(job_id)]))[1]["reason"] == "applied"
    assert svc.call("GET", f"/api/status/{job_id}")[1]["timings"]["e2e_ms"] == 40_000
    assert _finished(log_lines, job_id)["e2e_ms"] == 40_000
