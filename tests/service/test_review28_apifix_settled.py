"""When may a client stop polling? (review 28: a client written from the docs alone). The docs said: at `completed`
or `cancelled`, and at `failed`/`timed_out` only once `settle_by` has passed, so a client waited about 70 minutes
on a job RunPod itself had reported FAILED, though only an operator's act (a RunPod /retry, which the service never
sends, or a recovery) can change such a job. Only a `failed` job with no RunPod id (the service's guess: /run did
not answer) may still take RunPod's outcome until `settle_by`. GET /api/status now says which: `settled`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service import jobs

DOC = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text(encoding="utf-8"))
INTERFACES = (Path(__file__).resolve().parents[2] / "docs" / "INTERFACES.md").read_text(encoding="utf-8")


def status_of(svc: Any, job_id: str) -> dict[str, Any]:
    status, view, _ = svc.call("GET", f"/api/status/{job_id}")
    assert status == 200, view
    return view


def _ended_by_runpod(svc: Any, runpod_status: str) -> str:
    job_id = svc.create()["job_id"]
    delivery = {"id": svc.runpod_id(job_id), "status": runpod_status, "delayTime": 700, "executionTime": 1200,
                "error": "CUDA out of memory" if runpod_status == "FAILED" else None}
    assert svc.deliver(job_id, delivery)[1]["reason"] == "applied"
    return job_id


def test_a_job_runpod_reported_failed_or_timed_out_is_settled_at_once_not_after_settle_by(svc):
    for runpod_status, status in (("FAILED", "failed"), ("TIMED_OUT", "timed_out")):
        view = status_of(svc, _ended_by_runpod(svc, runpod_status))
        assert (view["status"], view["runpod_job_id"] is not None) == (status, True)
        assert view["timings"]["settle_by"] > jobs.iso_ms(svc.clock[0])  # an hour and more away
        assert view["settled"] is True, view


def test_a_failed_guess_is_not_settled_until_settle_by_since_runpod_may_still_complete_it(svc):
    svc.fake.run_mode = "error"  # RunPod's 5xx: it may have taken the job
    status, failed, _ = svc.call("POST", "/api/queue/create",
                                 {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}})
    assert (status, failed["error"]["code"]) == (503, "runpod_unavailable")
    job_id = failed["error"]["job_id"]
    view = status_of(svc, job_id)
    assert (view["status"], view["runpod_job_id"], view["settled"]) == ("failed", None, False)
    # one millisecond before settle_by it is still open; at settle_by RunPod has deleted any job it took for it
    row = svc.job(job_id)
    deadline_s = (row["created_at_ms"] + row["policy_ttl_ms"] + row["run_timeout_ms"] + 600_000) / 1000
    svc.clock[0] = deadline_s - 0.001
    assert status_of(svc, job_id)["settled"] is False
    svc.clock[0] = deadline_s
    view = status_of(svc, job_id)
    assert (view["status"], view["timings"]["settle_by"], view["settled"]) == ("failed", jobs.iso_ms(deadline_s), True)


def test_the_guess_a_client_kept_polling_for_is_replaced_by_runpods_outcome_and_that_settles_it(svc):
    svc.fake.run_mode = "error"
    _, failed, _ = svc.call("POST", "/api/queue/create",
                            {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}})
    job_id = failed["error"]["job_id"]
    assert status_of(svc, job_id)["settled"] is False
    image = svc.put_result(job_id)
    delivery = {"id": "rp-took-it-after-all-r28", "status": "COMPLETED", "delayTime": 5, "executionTime": 900,
                "output": {"images": [image]}}
    assert svc.deliver(job_id, delivery)[1]["reason"] == "applied"
    view = status_of(svc, job_id)
    assert (view["status"], view["settled"]) == ("completed", True)


def test_queued_is_never_settled_even_past_settle_by_and_completed_is(svc):
    job_id = svc.create()["job_id"]
    assert status_of(svc, job_id)["settled"] is False
    svc.clock[0] += 30 * 24 * 3600  # stuck: it needs an operator, it did not settle
    assert status_of(svc, job_id)["settled"] is False
    done = svc.create()["job_id"]
    svc.deliver(done, svc.completed(done, [svc.put_result(done)]))
    assert status_of(svc, done)["settled"] is True


def test_a_failed_guess_from_before_migration_0005_has_no_deadline_and_reads_settled(svc):
    svc.fake.run_mode = "error"
    _, failed, _ = svc.call("POST", "/api/queue/create",
                            {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}})
    job_id = failed["error"]["job_id"]
    svc.run(svc.db.execute("UPDATE jobs SET policy_ttl_ms = NULL WHERE id = ?", (job_id,)))
    view = status_of(svc, job_id)
    assert (view["timings"]["settle_by"], view["settled"]) == (None, True)


def test_openapi_and_interfaces_give_the_client_the_settled_rule():
    schema = DOC["components"]["schemas"]["JobStatus"]
    assert "settled" in schema["required"] and schema["properties"]["settled"]["type"] == "boolean"
    poll = DOC["paths"]["/api/status/{job_id}"]["get"]["description"]
    for text in (poll, INTERFACES):
        assert "stop at `failed`/`timed_out` past `settle_by`" not in text  # the old rule, 70 minutes of polling
    assert "`settled`" in poll and "`settled`" in INTERFACES
