"""Webhook deliveries in any order, repeated, stale, for another RunPod id, with conflicting terminal states and
a retried attempt's: after each one the job, its deliveries and its metrics row agree with a plain model of the
rules in docs/WEBHOOK_SEMANTICS.md, "Deliveries" (hypothesis draws the sequences)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_testkit import LosesTheRunPodIdWrite, svc  # noqa: F401 - the fixture

from service import cost

RANK = {"IN_QUEUE": 0, "IN_PROGRESS": 1, "COMPLETED": 2, "FAILED": 2, "CANCELLED": 2, "TIMED_OUT": 2}
STATUS = {"IN_QUEUE": "queued", "IN_PROGRESS": "in_progress", "COMPLETED": "completed", "FAILED": "failed",
          "CANCELLED": "cancelled", "TIMED_OUT": "timed_out"}
GPU = "NVIDIA GeForce RTX 4090"

delivery = st.tuples(
    # which RunPod id it names: the job's own, one no job holds, or one another job holds
    st.sampled_from(["own", "own", "own", "fresh", "held"]),
    st.sampled_from(list(RANK)),
    st.sampled_from([1000, 2500, 4100]),  # executionTime: tells one attempt's deliveries from another's
    st.booleans(),  # a COMPLETED's image matches the store (else its size is wrong)
    st.booleans(),  # an operator's recovery brings it (RunPod's /status answer), not a webhook
)


class Model:
    """The documented rules, for one job; `rid` is None when its /run answer was not recorded."""

    def __init__(self, price: float | None, rid: str | None) -> None:
        self.rid = rid
        self.status = "queued"
        self.seen: set[str] = set()
        self.usd: float | None = None
        self.price = price
        self.last_applied = ""  # RunPod's status in the last applied delivery

    def apply(self, rid: str, held: bool, runpod_status: str, execution_ms: int, good: bool, fingerprint: str
              ) -> tuple[bool, str]:
        if fingerprint in self.seen:
            return False, "duplicate"
        self.seen.add(fingerprint)
        if self.rid is not None and rid != self.rid:
            return False, "runpod_id_mismatch"
        new = STATUS[runpod_status]
        if self.status in ("completed", "failed", "cancelled", "timed_out"):
            if RANK[runpod_status] < 2:
                return False, "out_of_order"
            if new == self.status and new in ("completed", "cancelled"):
                return False, "no_change"
            if not (new == "completed" and self.status in ("failed", "timed_out")):
                return False, "terminal_conflict"
        elif RANK[runpod_status] < RANK[{"queued": "IN_QUEUE", "in_progress": "IN_PROGRESS"}[self.status]]:
            return False, "out_of_order"
        elif new == self.status:
            return False, "no_change"
        if self.rid is None:  # the id is adopted, unless another job holds it
            if held:
                return False, "runpod_job_taken"
            self.rid = rid
        if RANK[runpod_status] == 2:
            attempt = cost.estimate_usd(execution_ms, GPU, 1, self.price)
            if self.last_applied == "COMPLETED":  # its results were rejected: /retry takes no COMPLETED job,
                self.usd = self.usd if self.usd is not None else attempt  # so this is that attempt again
            elif self.status in ("failed", "timed_out"):  # a retried attempt: RunPod bills both
                self.usd = cost.attempts_usd(self.usd, attempt)
            else:
                self.usd = attempt
        self.status = "failed" if new == "completed" and not good else new
        self.last_applied = runpod_status
        return True, "applied"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(delivery, min_size=1, max_size=14),
       repeats=st.lists(st.integers(0, 13), max_size=6), unrecorded=st.booleans())
def test_any_sequence_of_deliveries_ends_as_the_documented_rules_say(svc, sequence, repeats, unrecorded):  # noqa: F811
    holder = svc.create()["job_id"]
    if unrecorded:  # RunPod took the job, but the write of its id was lost: its webhook adopts one
        svc.app.db = LosesTheRunPodIdWrite(svc.db)
    try:
        job_id = svc.create()["job_id"]
    finally:
        svc.app.db = svc.db
    recorded = svc.runpod_id(job_id)
    assert (recorded is None) == unrecorded
    own = recorded or f"rp-own-{job_id}"
    ids = {"own": own, "fresh": f"rp-fresh-{job_id}", "held": svc.runpod_id(holder)}
    image = svc.put_result(job_id)
    bad = {**image, "bytes": image["bytes"] + 1}
    model = Model(svc.app.transitions.pricing.price_per_gpu_second, recorded)
    # a delivery repeated later in the sequence, as RunPod's retries are
    for index in repeats:
        if index < len(sequence):
            sequence = [*sequence, sequence[index]]
    for which, runpod_status, execution_ms, good, recovery in sequence:
        payload: dict[str, Any] = {"id": ids[which], "status": runpod_status,
                                   "delayTime": 300, "executionTime": execution_ms}
        if runpod_status == "COMPLETED":
            payload["output"] = {"images": [image if good else bad], "gpu_type": GPU}
        elif runpod_status in ("FAILED", "TIMED_OUT"):
            payload["error"] = f"attempt of {execution_ms} ms failed"
        # a recovery asks /status for the job's recorded id
        recovered = recovery and svc.runpod_id(job_id) is not None and ids[which] == svc.runpod_id(job_id)
        applied, reason = model.apply(ids[which], which == "held", runpod_status, execution_ms, good,
                                      json.dumps(payload, sort_keys=True))
        if recovered:
            svc.fake.set_status(ids[which], payload)
            status, body, _ = svc.call("POST", f"/api/admin/recover/{job_id}")
        else:
            status, body, _ = svc.deliver(job_id, payload)
        assert status == 200, body
        assert (body["applied"], body["reason"], body["status"]) == (applied, reason, model.status), payload
        job = svc.job(job_id)
        assert job["status"] == model.status
        assert job["runpod_job_id"] == model.rid
        metrics = svc.rows("SELECT status, cost_estimate_usd, images, runpod_run_duration_ms FROM job_metrics "
                           "WHERE job_id = ?", (job_id,))
        if model.status in ("queued", "in_progress"):
            assert metrics == []
        else:
            assert [(m["status"], m["cost_estimate_usd"]) for m in metrics] == [(model.status, model.usd)]
            assert job["cost_estimate_usd"] == model.usd
            assert metrics[0]["images"] == (1 if model.status == "completed" else 0)
            assert metrics[0]["runpod_run_duration_ms"] == job["runpod_run_duration_ms"]  # the final attempt's
        kept = svc.rows("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE job_id = ?", (job_id,))[0]["n"]
        assert kept == len(model.seen)
    results = json.loads(svc.job(job_id)["results_json"] or "[]")
    assert [r["key"] for r in results] == ([image["key"]] if model.status == "completed" else [])


def test_a_recovery_that_completes_a_job_whose_results_were_rejected_prices_its_attempt_once(svc):  # noqa: F811
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    image = {"key": f"results/{job_id}/0.png", "content_type": "image/png", "bytes": 21, "sha256": "0" * 64,
             "width": 8, "height": 8}
    answer = {"id": rid, "status": "COMPLETED", "delayTime": 800, "executionTime": 4100,
              "output": {"images": [image], "gpu_type": GPU}}
    status, body, _ = svc.deliver(job_id, answer)  # the object is not in the store yet: the job fails
    assert (status, body["status"]) == (200, "failed")
    one_attempt = svc.job(job_id)["cost_estimate_usd"]
    assert one_attempt is not None and one_attempt > 0
    assert svc.put_result(job_id)["bytes"] == image["bytes"]
    # the operator recovers it; RunPod's /status answer for the same attempt differs from its webhook
    svc.fake.set_status(rid, {**answer, "delayTime": 812})
    status, body, _ = svc.call("POST", f"/api/admin/recover/{job_id}")
    assert (status, body["status"], body["applied"]) == (200, "completed", True), body
    assert svc.job(job_id)["cost_estimate_usd"] == one_attempt  # RunPod ran and billed it once
    assert svc.rows("SELECT cost_estimate_usd FROM job_metrics WHERE job_id = ?", (job_id,)) == [
        {"cost_estimate_usd": one_attempt}]


def test_a_completion_rejected_twice_leaves_the_metrics_row_describing_the_job(svc):  # noqa: F811
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    wrong = {**svc.put_result(job_id), "bytes": 999}
    first = {"id": rid, "status": "COMPLETED", "delayTime": 800, "executionTime": 1000,
             "output": {"images": [wrong], "gpu_type": GPU}}
    for payload in (first, {**first, "executionTime": 2600}):  # the recovery's report of the attempt differs
        status, body, _ = svc.deliver(job_id, payload)
        assert (status, body["status"]) == (200, "failed")
    job = svc.job(job_id)
    assert job["runpod_run_duration_ms"] == 2600
    row = svc.rows("SELECT status, runpod_run_duration_ms, cost_estimate_usd FROM job_metrics WHERE job_id = ?",
                   (job_id,))
    assert row == [{"status": "failed", "runpod_run_duration_ms": 2600, "cost_estimate_usd": job["cost_estimate_usd"]}]
