"""What a client written from the docs alone stumbled on (review 26): a create RunPod may have taken, sent without
an Idempotency-Key, was answered "submit it again later" (run and billed twice); no 202 said where to poll, and no
status said by when the job settles; a `failed` job that later turned `completed` was documented nowhere; a missing
result of a job one minute old was blamed on the result expiry; and every status read minted a new result URL, so a
page's <img src> was fetched again on each poll. Real SQLite, moto S3, a fake RunPod."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from service import jobs
from service.recover import runpod_deadline_s
from service.signing import MAX_URL_TTL_S
from service.transitions import _decide

BODY = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}
DOC = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text(encoding="utf-8"))


def create(svc: Any, key: str | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    return svc.call("POST", "/api/queue/create", BODY, headers={} if key is None else {"idempotency-key": key})


def status_of(svc: Any, job_id: str) -> dict[str, Any]:
    status, view, _ = svc.call("GET", f"/api/status/{job_id}")
    assert status == 200, view
    return view


@pytest.mark.parametrize("mode", ["error", "garbage"])  # RunPod's 5xx; an answer that is not RunPod's
def test_a_create_runpod_may_have_taken_sent_without_a_key_says_to_read_its_status_not_to_send_it_again(
        svc, mode):
    svc.fake.run_mode = mode
    status, failed, headers = create(svc)
    assert (status, failed["error"]["code"], "retry-after" in headers) == (503, "runpod_unavailable", False)
    job_id, message = failed["error"]["job_id"], failed["error"]["message"]
    # Before: "...; job X is marked failed; submit it again later": a second job, which RunPod could run and bill too.
    assert "submit it again later" not in message
    assert f"read GET /api/status/{job_id} before submitting again" in message
    assert "send an Idempotency-Key to make such a retry safe" in message
    # what it says holds: RunPod took it after all, and its webhook completes the job recorded failed
    assert status_of(svc, job_id)["status"] == "failed"
    image = svc.put_result(job_id)
    delivery = {"id": "rp-took-it-after-all-u1", "status": "COMPLETED", "delayTime": 5, "executionTime": 900,
                "output": {"images": [image]}}
    assert svc.deliver(job_id, delivery)[1]["reason"] == "applied"
    assert status_of(svc, job_id)["status"] == "completed"


@pytest.mark.parametrize(("mode", "code"), [("refuse", 502), ("busy", 503)])
def test_a_create_runpod_surely_did_not_take_still_says_submit_it_again_later(svc, mode, code):
    svc.fake.run_mode = mode
    status, failed, _ = create(svc)
    assert (status, failed["error"]["message"].endswith("; submit it again later")) == (code, True), failed


def test_every_202_of_create_names_where_to_poll_the_job(svc):
    status, first, headers = create(svc, "k-review26-location")
    assert status == 202
    assert headers["location"] == f"/api/status/{first['job_id']}"  # before: no Location at all
    status, replay, headers = create(svc, "k-review26-location")  # the replay of it, too
    assert (status, replay["job_id"], headers["idempotent-replayed"], headers["location"]) == (
        202, first["job_id"], "true", f"/api/status/{first['job_id']}")
    status, view, _ = svc.call("GET", headers["location"])
    assert (status, view["job_id"]) == (200, first["job_id"])


def test_status_says_by_when_the_job_settles_and_null_once_it_is_final(svc):
    svc.clock[0] = 1_800_000_000.25
    job = svc.create()
    row = svc.job(job["job_id"])
    settle_by = status_of(svc, job["job_id"])["timings"]["settle_by"]
    # creation + policy.ttl + /run timeout + 10 min: the very time a recovery names (recover's deadline)
    expected_ms = row["created_at_ms"] + row["policy_ttl_ms"] + row["run_timeout_ms"] + 600_000
    assert settle_by == jobs.iso_ms(expected_ms / 1000) == jobs.iso_ms(
        runpod_deadline_s(row, svc.app.config.ttl_ms, svc.app.config.runpod_timeout_s))
    svc.clock[0] += 120
    assert status_of(svc, job["job_id"])["timings"]["settle_by"] == settle_by  # the job's, not the read's
    image = svc.put_result(job["job_id"])
    svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))
    assert status_of(svc, job["job_id"])["timings"]["settle_by"] is None  # completed: final

    # a failed job is not final until then (a COMPLETED may still replace it): it keeps its settle_by
    svc.fake.run_mode = "error"
    _, failed, _ = create(svc, "k-review26-failed")
    view = status_of(svc, failed["error"]["job_id"])
    assert view["status"] == "failed" and view["timings"]["settle_by"] is not None
    # a row from before migration 0005 kept no ttl: it cannot say
    svc.run(svc.db.execute("UPDATE jobs SET policy_ttl_ms = NULL WHERE id = ?", (failed["error"]["job_id"],)))
    assert status_of(svc, failed["error"]["job_id"])["timings"]["settle_by"] is None


def test_the_final_statuses_the_api_documents_are_those_the_transitions_never_replace() -> None:
    final = sorted(s for s in jobs.TERMINAL
                   if all(_decide(s, new) != "applied" for new in jobs.STATUSES))
    assert final == ["cancelled", "completed"]
    said = DOC["components"]["schemas"]["JobStatus"]["properties"]["status"]["description"]
    assert "Final: `completed` and `cancelled`" in said
    assert "Not final: `failed` and `timed_out`" in said
    assert "may still complete" in DOC["paths"]["/api/queue/create"]["post"]["responses"]["503"]["description"]


def _url_of(svc: Any, job_id: str) -> tuple[str, str]:
    [result] = status_of(svc, job_id)["results"]
    return result["url"], result["url_expires_at"]


def test_the_result_url_stays_the_same_across_polls_and_still_lives_its_whole_ttl(svc):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))
    ttl = svc.app.config.signed_url_ttl_s
    svc.clock[0] = 1_800_000_007.0  # issued + ttl is no multiple of anything round
    first, _ = _url_of(svc, job["job_id"])
    svc.clock[0] += 2  # the next poll, 2 s later
    second, _ = _url_of(svc, job["job_id"])
    assert second == first  # before: a new exp, a new URL, each poll: the browser's cache never hit
    exp = int(first.split("exp=")[1].split("&")[0])
    assert exp % 300 == 0 and svc.clock[0] + ttl <= exp < svc.clock[0] + ttl + 300
    path, query = first[len("http://api.test"):].split("?")
    svc.clock[0] = exp - 1  # never shorter than promised: valid until url_expires_at
    assert svc.call("GET", path, token=None, query=query)[0] == 200
    svc.clock[0] = exp + 1
    assert svc.call("GET", path, token=None, query=query)[0] == 403


def test_a_result_url_of_the_longest_ttl_is_not_rounded_past_what_the_service_accepts(svc):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))
    svc.app.config = dataclasses.replace(svc.app.config, signed_url_ttl_s=MAX_URL_TTL_S)
    svc.clock[0] = 1_800_000_007.0
    url, _ = _url_of(svc, job["job_id"])
    exp = int(url.split("exp=")[1].split("&")[0])
    assert exp >= svc.clock[0] + MAX_URL_TTL_S
    path, query = url[len("http://api.test"):].split("?")
    assert svc.call("GET", path, token=None, query=query)[0] == 200


def test_a_key_its_existing_job_never_recorded_is_not_blamed_on_the_result_expiry(svc, log_lines):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))
    reads: list[str] = []
    query = svc.app.db.query

    async def counted(sql: str, params: Any = ()) -> Any:
        reads.append(sql)
        return await query(sql, params)

    svc.app.db.query = counted
    status, body, _ = svc.call("GET", f"/api/result/results/{job['job_id']}/1.png")
    assert (status, body["error"]["code"]) == (404, "not_found")
    # before: "(results are deleted after the stack's storage.result_ttl_days)", for a job a minute old
    assert body["error"]["message"] == (f"no result object results/{job['job_id']}/1.png: job {job['job_id']} "
                                        f"recorded no such result (GET /api/status/{job['job_id']} lists its keys)")
    assert len(reads) == 1  # the one read of the 404 path
    reads.clear()
    # One on the way to a 200: the size the job recorded, compared with the store's (409 result_changed otherwise)
    assert svc.call("GET", f"/api/result/{image['key']}")[0] == 200 and len(reads) == 1, reads
    # no job row (pruned): the expiry is the likely cause, and the answer keeps saying so
    for table, column in (("webhook_deliveries", "job_id"), ("jobs", "id")):
        svc.run(svc.db.execute(f"DELETE FROM {table} WHERE {column} = ?", (job["job_id"],)))
    status, body, _ = svc.call("GET", f"/api/result/results/{job['job_id']}/1.png")
    assert (status, body["error"]["code"]) == (404, "not_found") and "storage.result_ttl_days" in body["error"][
        "message"]
