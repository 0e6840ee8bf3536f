"""What a mutation audit (review 27) of review 26's API changes found no test holding: the 202 of a create whose
/run answer was lost after its webhook came, and of one whose RunPod id could not be recorded, name where to poll
(`Location`) as every other 202 does; a cancelled job is final (`settle_by` null) and a timed_out one is not (it
keeps its `settle_by`: a COMPLETED may still replace it). Real SQLite, moto S3, a fake RunPod."""

from __future__ import annotations

import json
from typing import Any

from service_testkit import WEBHOOK_SECRET, LosesTheRunPodIdWrite

from service.http import Request
from service.runpod import RunPodUnavailable
from service.signing import webhook_signature

BODY = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}


class _WebhookThenAnswerLost:
    """RunPod takes the job and its IN_PROGRESS webhook reaches the service; then /run's own answer is lost."""

    def __init__(self, svc: Any) -> None:
        self.svc, self.inner = svc, svc.app.runpod

    async def run(self, body: dict[str, Any]) -> dict[str, Any]:
        reply = await self.inner.run(body)
        job_id = body["input"]["job_id"]
        hook = await self.svc.app.handle(Request(
            "POST", "/api/runpod/webhook", f"job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}", {},
            json.dumps({"id": reply["id"], "status": "IN_PROGRESS", "delayTime": 20}).encode()))
        assert hook.status == 200, hook.body
        raise RunPodUnavailable("RunPod at https://api.runpod.ai is unreachable: timed out")

    async def status(self, runpod_job_id: str) -> Any:
        return await self.inner.status(runpod_job_id)


def _polled(svc: Any, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    assert headers.get("location") == f"/api/status/{job_id}", headers
    status, view, _ = svc.call("GET", headers["location"])
    assert (status, view["job_id"]) == (200, job_id), view
    return view


def test_the_202_of_a_create_whose_run_answer_was_lost_after_its_webhook_names_where_to_poll(svc) -> None:
    svc.app.runpod = _WebhookThenAnswerLost(svc)
    status, body, headers = svc.call("POST", "/api/queue/create", BODY)
    assert (status, body["status"]) == (202, "in_progress"), body
    assert _polled(svc, headers, body["job_id"])["status"] == "in_progress"


def test_the_202_of_a_create_whose_runpod_id_was_not_recorded_names_where_to_poll(svc) -> None:
    svc.app.db = LosesTheRunPodIdWrite(svc.db)
    status, body, headers = svc.call("POST", "/api/queue/create", BODY)
    svc.app.db = svc.db
    assert (status, body["status"]) == (202, "queued"), body
    assert _polled(svc, headers, body["job_id"])["status"] == "queued"


def test_a_cancelled_job_says_it_is_final_and_a_timed_out_one_keeps_its_settle_by(svc) -> None:
    for runpod_status, status, settles in (("CANCELLED", "cancelled", False), ("TIMED_OUT", "timed_out", True)):
        job_id = svc.create()["job_id"]
        assert svc.deliver(job_id, {"id": svc.runpod_id(job_id), "status": runpod_status})[1]["status"] == status
        code, view, _ = svc.call("GET", f"/api/status/{job_id}")
        assert (code, view["status"]) == (200, status), view
        assert (view["timings"]["settle_by"] is not None) is settles, (status, view["timings"])
