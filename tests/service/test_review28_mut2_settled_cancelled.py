"""GET /api/status's `settled` on a job RunPod reported CANCELLED: `cancelled` is never replaced, so the job is
settled at once and a client stops polling (nothing but an operator's act changes it)."""

from __future__ import annotations


def test_a_cancelled_job_is_settled_at_once(svc):
    job_id = svc.create()["job_id"]
    delivery = {"id": svc.runpod_id(job_id), "status": "CANCELLED", "delayTime": 700, "executionTime": 0}
    assert svc.deliver(job_id, delivery)[1]["reason"] == "applied"
    status, view, _ = svc.call("GET", f"/api/status/{job_id}")
    assert status == 200, view
    assert view["status"] == "cancelled"
    assert view["settled"] is True, view
