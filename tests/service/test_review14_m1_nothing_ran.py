"""Review 14 (m1): a job recorded failed with no RunPod outcome names no GPU (docs/WEBHOOK_SEMANTICS.md, "No
RunPod outcome": nothing is known to have run, so neither the job nor its metrics row names image, GPU, cost or e2e)."""

from __future__ import annotations

from service_testkit import svc  # noqa: F401 - the fixture
from test_recover_expired_ttl import _never_sent, _refused_until_expiry
from test_recover_unrecorded_runpod_id import _recover


def test_a_job_recorded_failed_at_its_deadline_names_no_gpu(svc):  # noqa: F811
    job_id = _never_sent(svc)
    svc.clock[0] = _refused_until_expiry(svc, job_id, "not_submitted")
    assert _recover(svc, job_id)[1]["status"] == "failed"
    view = svc.call("GET", f"/api/status/{job_id}")[1]
    assert view["gpu_type"] is None  # the stack's configured GPU ran nothing
    assert svc.rows("SELECT gpu_type FROM job_metrics WHERE job_id = ?", (job_id,)) == [{"gpu_type": None}]
