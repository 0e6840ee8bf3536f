"""Two recoveries of two jobs naming the same RunPod id at once: D1 has no interactive transactions, so both can
pass the check that no other job holds the id before either adopts it. The adopting write itself refuses an id
another job holds: exactly one job gets it, the other answers 409 `runpod_job_taken` with nothing changed. A
signed webhook that would adopt such an id is recorded as ignored, and changes nothing either.
Real SQLite, moto S3, a fake RunPod data plane; the recoveries go through the HTTP route."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from service_testkit import API_TOKEN
from test_review2_outcome_names_unrecorded_id import _store_outcome

from service.http import Request

# recover.py's early check that no other job holds the id (its first query naming runpod_job_id).
_EARLY_CHECK = "SELECT id FROM jobs WHERE runpod_job_id = ?"


class RacesTheEarlyCheck:
    """The database, running `meanwhile` right after the first early check has found the id free: another request
    the event loop runs between this recovery's check and its write (D1 calls cross the network)."""

    def __init__(self, db: Any, meanwhile: Callable[[], Awaitable[None]]) -> None:
        self.db = db
        self.meanwhile: Callable[[], Awaitable[None]] | None = meanwhile

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    async def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        rows = await self.db.query(sql, params)
        if sql.startswith(_EARLY_CHECK) and not rows and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()
        return rows


def _unrecorded_job(svc) -> tuple[str, str]:
    """A job RunPod took whose id the service lost: (job id, RunPod's id for it)."""
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    svc.run(svc.db.execute("UPDATE jobs SET runpod_job_id = NULL WHERE id = ?", (job_id,)))
    return job_id, rid


async def _recover(svc, job_id: str, rid: str) -> tuple[int, Any]:
    response = await svc.app.handle(Request("POST", f"/api/admin/recover/{job_id}", "",
                                            {"authorization": f"Bearer {API_TOKEN}"},
                                            json.dumps({"runpod_job_id": rid}).encode()))
    return response.status, json.loads(response.body)


def _deliveries(svc, job_id: str) -> list[dict[str, Any]]:
    return svc.rows("SELECT runpod_job_id, applied, outcome, source FROM webhook_deliveries WHERE job_id = ?",
                    (job_id,))


def test_two_recoveries_naming_one_runpod_id_at_once_give_it_to_one_job_and_refuse_the_other(svc, log_lines):
    first, rid = _unrecorded_job(svc)
    second, _ = _unrecorded_job(svc)
    # A FAILED answer carries nothing of the job: it is taken on the operator's word, so only the id check stands
    # between the second job and the first's outcome.
    svc.fake.set_status(rid, {"id": rid, "status": "FAILED", "delayTime": 5, "executionTime": 9,
                              "error": "CUDA out of memory"})
    before = svc.job(first)
    answers: dict[str, tuple[int, Any]] = {}

    async def second_recovery_runs_meanwhile() -> None:
        answers[second] = await _recover(svc, second, rid)

    svc.app.db = RacesTheEarlyCheck(svc.db, second_recovery_runs_meanwhile)
    answers[first] = svc.run(_recover(svc, first, rid))
    svc.app.db = svc.db

    assert answers[second][0] == 200 and answers[second][1]["applied"] is True, answers[second]
    status, body = answers[first]
    assert (status, body["error"]["code"]) == (409, "runpod_job_taken"), body
    assert second in body["error"]["message"] and f"job {first} is unchanged" in body["error"]["message"]
    assert svc.rows("SELECT id FROM jobs WHERE runpod_job_id = ?", (rid,)) == [{"id": second}]
    assert svc.job(first) == before
    assert _deliveries(svc, first) == []
    assert [m["job_id"] for m in svc.rows("SELECT job_id FROM job_metrics")] == [second]
    [refused] = [json.loads(line) for line in log_lines if json.loads(line)["event"] == "job.recover_failed"]
    assert (refused["level"], refused["reason"], refused["job_id"]) == ("warning", "runpod_job_taken", first)


def test_a_recovery_refused_by_the_race_leaves_the_job_recoverable_with_its_own_id(svc):
    first, rid = _unrecorded_job(svc)
    second, own_rid = _unrecorded_job(svc)
    svc.fake.set_status(rid, {"id": rid, "status": "FAILED", "delayTime": 5, "executionTime": 9, "error": "x"})

    async def first_job_recovered_meanwhile() -> None:
        assert (await _recover(svc, first, rid))[0] == 200

    svc.app.db = RacesTheEarlyCheck(svc.db, first_job_recovered_meanwhile)
    status, body = svc.run(_recover(svc, second, rid))
    svc.app.db = svc.db
    assert (status, body["error"]["code"]) == (409, "runpod_job_taken"), body

    svc.fake.set_status(own_rid, {"id": own_rid, "status": "FAILED", "delayTime": 5, "executionTime": 9,
                                  "error": "worker crashed"})
    status, body = svc.run(_recover(svc, second, own_rid))
    assert (status, body["applied"], body["status"]) == (200, True, "failed"), body
    row = svc.job(second)
    assert (row["runpod_job_id"], row["error"]) == (own_rid, "worker crashed")


def test_an_id_recorded_on_another_job_after_the_check_stops_a_recovery_from_the_stored_outcome(svc):
    # The recovery takes the id from the outcome the worker stored, RunPod having forgotten the job; between its
    # check and its write the id lands on another job.
    job_id, rid = _unrecorded_job(svc)
    other = svc.create()["job_id"]
    _store_outcome(svc, job_id, rid)
    del svc.fake.jobs[rid]
    before = svc.job(job_id)

    async def other_job_gets_the_id_meanwhile() -> None:
        await svc.db.execute("UPDATE jobs SET runpod_job_id = ? WHERE id = ?", (rid, other))

    svc.app.db = RacesTheEarlyCheck(svc.db, other_job_gets_the_id_meanwhile)
    response = svc.run(svc.app.handle(Request("POST", f"/api/admin/recover/{job_id}", "",
                                              {"authorization": f"Bearer {API_TOKEN}"}, b"")))
    svc.app.db = svc.db
    body = json.loads(response.body)

    assert (response.status, body["error"]["code"]) == (409, "runpod_job_taken"), body
    assert other in body["error"]["message"] and f"results/{job_id}/outcome.json names" in body["error"]["message"]
    assert svc.job(job_id) == before
    assert _deliveries(svc, job_id) == [] and svc.rows("SELECT * FROM job_metrics") == []


def test_a_webhook_adopting_a_runpod_id_another_job_holds_is_recorded_ignored_and_changes_nothing(svc, log_lines):
    # The id is already the holder's (an operator's recovery gave it, on a FAILED answer): the webhook is signed
    # for this job, but adopting it would leave two jobs on one RunPod id.
    job_id, own_rid = _unrecorded_job(svc)
    holder = svc.create()["job_id"]
    taken = svc.runpod_id(holder)
    before = svc.job(job_id)
    payload = {"id": taken, "status": "FAILED", "delayTime": 5, "executionTime": 9, "error": "worker crashed"}

    status, body, _ = svc.deliver(job_id, payload)

    assert (status, body) == (200, {"applied": False, "reason": "runpod_job_taken", "status": "queued"})
    assert svc.job(job_id) == before
    assert svc.rows("SELECT id FROM jobs WHERE runpod_job_id = ?", (taken,)) == [{"id": holder}]
    assert _deliveries(svc, job_id) == [{"runpod_job_id": taken, "applied": 0, "outcome": "runpod_job_taken",
                                         "source": "webhook"}]
    assert svc.rows("SELECT * FROM job_metrics") == []
    [line] = [json.loads(line) for line in log_lines if json.loads(line)["event"] == "webhook.runpod_job_taken"]
    assert (line["level"], line["job_id"], line["runpod_job_id"]) == ("warning", job_id, taken)
    assert holder in line["message"]
    # RunPod's retry of it is a duplicate; the job's own RunPod id still settles it
    assert svc.deliver(job_id, payload)[1]["reason"] == "duplicate"
    status, body, _ = svc.deliver(job_id, {**payload, "id": own_rid})
    assert (status, body["applied"], body["status"]) == (200, True, "failed"), body
    assert svc.job(job_id)["runpod_job_id"] == own_rid
