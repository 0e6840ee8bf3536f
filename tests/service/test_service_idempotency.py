"""Idempotency-Key on POST /api/queue/create: a client retrying a create it never got the answer to
gets the same job back, and RunPod runs (and bills) it once. Real SQLite, moto S3, a fake RunPod."""

from __future__ import annotations

import asyncio
import json

import pytest
from service_testkit import API_TOKEN

from service.http import Request

BODY = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}


def create(svc, key: str | None, body: dict = BODY) -> tuple[int, dict, dict]:
    return svc.call("POST", "/api/queue/create", body, headers={} if key is None else {"idempotency-key": key})


def test_a_create_retried_with_the_same_key_answers_the_same_job_and_runpod_runs_it_once(svc, log_lines):
    status, first, headers = create(svc, "4f1c8e0a-retry-after-timeout")
    assert status == 202 and "idempotent-replayed" not in headers
    # the body re-serialised with its keys in another order is the same request
    again = json.loads(json.dumps(BODY, sort_keys=True))
    status, second, headers = create(svc, "4f1c8e0a-retry-after-timeout", {"inputs": again["inputs"],
                                                                          "workflow_id": again["workflow_id"]})
    assert status == 202 and headers["idempotent-replayed"] == "true"
    assert second == first
    assert len(svc.fake.runs) == 1
    assert len(svc.rows("SELECT id FROM jobs")) == 1
    replayed = [json.loads(line) for line in log_lines if json.loads(line)["event"] == "job.create_replayed"]
    assert [line["job_id"] for line in replayed] == [first["job_id"]]


def test_the_replay_reports_the_jobs_current_status(svc):
    _, first, _ = create(svc, "k-status")
    image = svc.put_result(first["job_id"])
    svc.deliver(first["job_id"], svc.completed(first["job_id"], [image]))
    status, second, _ = create(svc, "k-status")
    assert status == 202 and second["job_id"] == first["job_id"] and second["status"] == "completed"


def test_the_same_key_with_another_body_is_refused_with_422_and_runs_nothing(svc):
    _, first, _ = create(svc, "k-reused")
    status, body, _ = create(svc, "k-reused", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a castle"}})
    assert status == 422 and body["error"]["code"] == "idempotency_key_reused"
    assert body["error"]["job_id"] == first["job_id"]
    assert len(svc.fake.runs) == 1 and len(svc.rows("SELECT id FROM jobs")) == 1


def test_concurrent_creates_with_the_same_key_make_one_job_and_one_runpod_run(svc):
    async def burst() -> list:
        request = Request("POST", "/api/queue/create", "", {"authorization": f"Bearer {API_TOKEN}",
                                                            "idempotency-key": "k-burst"}, json.dumps(BODY).encode())
        return await asyncio.gather(*[svc.app.handle(request) for _ in range(8)])

    responses = svc.run(burst())
    assert {r.status for r in responses} == {202}
    assert len({json.loads(r.body)["job_id"] for r in responses}) == 1
    assert len(svc.fake.runs) == 1 and len(svc.rows("SELECT id FROM jobs")) == 1


def test_different_keys_and_no_key_create_separate_jobs(svc):
    ids = {create(svc, key)[1]["job_id"] for key in ("k-one", "k-two", None, None)}
    assert len(ids) == 4 and len(svc.fake.runs) == 4


def test_the_quoted_form_of_the_ietf_draft_is_the_same_key(svc):
    _, first, _ = create(svc, '"k-quoted"')
    status, second, headers = create(svc, "k-quoted")
    assert status == 202 and second["job_id"] == first["job_id"] and headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, '"unbalanced', "caf\u00e9", 'a"b', "k-newline\n"])
def test_a_malformed_key_is_a_400_naming_the_header_and_creates_nothing(svc, key):
    status, body, _ = create(svc, key)
    assert status == 400 and body["error"]["code"] == "invalid_idempotency_key"
    assert body["error"]["field"] == "Idempotency-Key" and "Idempotency-Key" in body["error"]["message"]
    assert svc.fake.runs == [] and svc.rows("SELECT id FROM jobs") == []


def test_a_key_older_than_the_window_creates_a_new_job(svc):
    _, first, _ = create(svc, "k-old")
    svc.clock[0] += 24 * 3600 + 1
    status, second, headers = create(svc, "k-old", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "new"}})
    assert status == 202 and second["job_id"] != first["job_id"] and "idempotent-replayed" not in headers
    assert len(svc.fake.runs) == 2


@pytest.mark.parametrize(("mode", "code"), [("refuse", 502), ("busy", 503)])
def test_a_create_runpod_said_it_did_not_take_frees_its_key_so_the_retry_submits(svc, mode, code):
    svc.fake.run_mode = mode
    status, failed, _ = create(svc, f"k-runpod-{mode}")
    assert status == code and failed["error"]["job_id"]
    svc.fake.run_mode = "accept"
    status, body, headers = create(svc, f"k-runpod-{mode}")
    assert status == 202 and body["job_id"] != failed["error"]["job_id"] and "idempotent-replayed" not in headers
    assert svc.job(body["job_id"])["runpod_job_id"] is not None


def test_a_create_whose_runpod_outcome_is_unknown_keeps_its_key_so_a_retry_cannot_run_it_twice(svc):
    # A 5xx (or a timeout) may come after RunPod took the job: a retry with the key must not submit it again.
    svc.fake.run_mode = "error"
    status, failed, _ = create(svc, "k-runpod-unknown")
    assert status == 503 and failed["error"]["code"] == "runpod_unavailable"
    assert "a retry with this Idempotency-Key answers this job" in failed["error"]["message"]
    svc.fake.run_mode = "accept"
    status, body, headers = create(svc, "k-runpod-unknown")
    assert status == 202 and body["job_id"] == failed["error"]["job_id"] and body["status"] == "failed"
    assert headers.get("idempotent-replayed") == "true" and len(svc.fake.runs) == 1


class _HolderGivesUpMeanwhile:
    """The database, where the key's holder (its submission failing) frees the key just after our claim lost."""

    def __init__(self, db) -> None:
        self.db = db

    def __getattr__(self, name: str):
        return getattr(self.db, name)

    async def query(self, sql: str, params=()):
        if "FROM idempotency_keys" in sql:
            await self.db.execute("DELETE FROM idempotency_keys")
        return await self.db.query(sql, params)


def test_a_key_freed_between_a_lost_claim_and_its_read_is_claimed_again(svc):
    _, first, _ = create(svc, "k-freed")
    svc.app.db = _HolderGivesUpMeanwhile(svc.db)
    status, second, headers = create(svc, "k-freed")
    svc.app.db = svc.db
    assert status == 202 and second["job_id"] != first["job_id"] and "idempotent-replayed" not in headers
    assert len(svc.fake.runs) == 2


class _CannotFreeKeys:
    """The database, failing the write that frees a key (D1 can drop a call)."""

    def __init__(self, db) -> None:
        self.db = db

    def __getattr__(self, name: str):
        return getattr(self.db, name)

    async def execute(self, sql: str, params=()):
        if sql.startswith("DELETE FROM idempotency_keys"):
            import sqlite3
            raise sqlite3.OperationalError("D1_ERROR: Network connection lost.")
        return await self.db.execute(sql, params)


@pytest.mark.parametrize(("mode", "code"), [("refuse", 502), ("busy", 503)])
def test_a_refused_create_whose_key_could_not_be_freed_tells_the_client_to_use_a_new_key(svc, log_lines, mode, code):
    # Before: "submit it again later", and the retry with the same key got this failed job back for 24 hours.
    svc.fake.run_mode = mode
    svc.app.db = _CannotFreeKeys(svc.db)
    status, failed, _ = create(svc, f"k-kept-{mode}")
    svc.app.db = svc.db
    assert status == code
    message = failed["error"]["message"]
    assert "a retry with that key answers this failed job" in message and message.endswith("with a new key")
    [line] = [json.loads(line) for line in log_lines if json.loads(line)["job_id"] == failed["error"]["job_id"]]
    assert line["event"] == "job.submit_failed" and line["data"]["idempotency_key_kept"]["type"] == "OperationalError"
    # what the message says holds: the same key answers the failed job, a new key submits
    svc.fake.run_mode = "accept"
    status, replayed, headers = create(svc, f"k-kept-{mode}")
    assert (status, replayed["job_id"], replayed["status"]) == (202, failed["error"]["job_id"], "failed")
    assert headers.get("idempotent-replayed") == "true"
    status, fresh, _ = create(svc, f"k-kept-{mode}-new")
    assert status == 202 and fresh["status"] == "queued" and len(svc.fake.runs) == 2
