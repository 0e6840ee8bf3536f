"""Decisions of the cancel route, the job cap, the full-database paths, transitions, signing and the JSON
depth bound that the suite left unchecked (a mutation audit of session 19: each test here fails on a one-line
change of the code that a client or an operator would notice, and passes on the code as it is). Real SQLite,
moto S3, the fake RunPod plane with /cancel."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from service_testkit import RUNPOD_KEY, WEBHOOK_SECRET, LosesTheRunPodIdWrite
from test_review15_clock_transitions import _complete, _finished
from test_review17_cancel_route import CREATE, CancellingRunPod, _cancel
from test_service_cloudflare_entry import _entry, make_env

from service.ports import StorageFull
from service.s3_store import S3ResultStore
from service.signing import result_signature, result_signed_with, webhook_signature, webhook_signed_with

DOWN = "http://127.0.0.1:9"  # nothing listens there: the result store, unreachable


@pytest.fixture
def fake_runpod():  # the kit's plane, with /cancel
    fake = CancellingRunPod(RUNPOD_KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Any:
    yield from _entry(monkeypatch, with_jsnull=True)


def _running(svc, delay_ms: int = 1_200, execution_ms: int = 30_000) -> tuple[str, str]:
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    svc.fake.set_status(rid, {"id": rid, "status": "IN_PROGRESS", "delayTime": delay_ms,
                              "executionTime": execution_ms})
    svc.clock[0] += 40
    return job_id, rid


def _in_flight(status: int, body: Any, headers: dict[str, str]) -> None:
    got = (status, body["error"]["code"], headers.get("retry-after"))
    assert got == (409, "submission_in_flight", "2"), body


def test_a_cancel_answered_timed_out_records_the_run_time_and_cost_from_runpods_status(svc):
    """The job ran into its execution timeout before the cancel reached RunPod: /cancel answers TIMED_OUT (the
    status it ended with), without timings. It ran on a GPU for its whole timeout, the costliest kind of job:
    its run time and cost come from the one /status read, as for a CANCELLED answer."""
    job_id, rid = _running(svc)
    svc.fake.cancel_answer = {"id": rid, "status": "TIMED_OUT"}
    svc.fake.set_status(rid, {"id": rid, "status": "TIMED_OUT", "delayTime": 1_200, "executionTime": 30_000})
    status, body, _ = _cancel(svc, job_id)
    assert (status, body["applied"], body["status"]) == (200, True, "timed_out"), body
    assert body["cancelled"] is False, body
    assert svc.fake.status_calls.count(rid) == 1
    [metrics] = svc.rows("SELECT * FROM job_metrics WHERE job_id = ?", (job_id,))
    assert (metrics["status"], metrics["runpod_run_duration_ms"]) == ("timed_out", 30_000), metrics
    assert metrics["cost_estimate_usd"] is not None and metrics["cost_estimate_usd"] > 0, metrics


def test_a_cancel_answered_failed_with_the_workers_error_in_its_output_records_the_failure(svc):
    """A FAILED answer carrying why in its output (the worker's own error report) is an outcome: the job is
    recorded failed with that error, not left running with its webhook to wait for."""
    job_id, rid = _running(svc)
    svc.fake.cancel_answer = {"id": rid, "status": "FAILED", "delayTime": 3, "executionTime": 400,
                              "output": {"error": "worker crashed: CUDA out of memory"}}
    status, body, _ = _cancel(svc, job_id)
    assert (status, body["applied"], body["reason"], body["status"]) == (200, True, "applied", "failed"), body
    job = svc.job(job_id)
    assert (job["status"], job["error"]) == ("failed", "worker crashed: CUDA out of memory"), job


def test_a_job_without_its_runpod_id_a_little_past_its_run_timeout_may_still_be_submitting(svc):
    """The /run call may take its whole timeout (10 s here) and its answer be written a little later, on
    another machine's clock: within the minute after, the cancel is still to be retried shortly (409
    `submission_in_flight`, Retry-After), only then is no answer coming (`not_submitted`, no Retry-After)."""
    svc.app.db = LosesTheRunPodIdWrite(svc.db)
    status, body, _ = svc.call("POST", "/api/queue/create", CREATE)
    svc.app.db = svc.db
    assert status == 202, body
    job_id = body["job_id"]
    svc.clock[0] += 10 + 50  # past the /run timeout, within its minute of slack
    _in_flight(*_cancel(svc, job_id))
    svc.clock[0] += 11  # the timeout and its minute have passed
    status, body, headers = _cancel(svc, job_id)
    assert (status, body["error"]["code"], headers.get("retry-after")) == (409, "not_submitted", None), body
    assert svc.fake.cancel_calls == []


def test_a_cancel_whose_outcome_cannot_be_checked_in_the_store_is_a_503_to_retry(svc):
    """RunPod answers the cancel with the job's whole COMPLETED outcome; its images cannot be checked while
    the result store is unreachable: a 503 the client retries (the store comes back), not a 502 blaming
    RunPod, and nothing is recorded meanwhile."""
    job_id, _rid = _running(svc)
    image = svc.put_result(job_id)
    svc.fake.cancel_answer = svc.completed(job_id, [image])
    before = svc.job(job_id)
    store = svc.app.transitions.store
    svc.app.transitions.store = S3ResultStore.connect(DOWN, "b", "k", "s")
    status, body, _ = _cancel(svc, job_id)
    assert (status, body["error"]["code"]) == (503, "store_unavailable"), body
    assert "cancel it again later" in body["error"]["message"], body
    assert svc.job(job_id) == before and svc.rows("SELECT * FROM job_metrics") == []
    svc.app.transitions.store = store
    status, body, _ = _cancel(svc, job_id)
    assert (status, body["applied"], body["status"]) == (200, True, "completed"), body


def test_a_cancel_of_a_job_recorded_before_its_run_timeout_was_kept_is_still_a_409(svc):
    """A job recorded before migration 0005 has no run_timeout_ms: the service's own /run timeout stands in
    for it (a 500 otherwise), here within it: the submission may still be answered."""
    svc.app.db = LosesTheRunPodIdWrite(svc.db)
    status, body, _ = svc.call("POST", "/api/queue/create", CREATE)
    svc.app.db = svc.db
    assert status == 202, body
    job_id = body["job_id"]
    svc.run(svc.db.execute("UPDATE jobs SET run_timeout_ms = NULL, policy_ttl_ms = NULL WHERE id = ?",
                           (job_id,)))
    svc.clock[0] += 5
    _in_flight(*_cancel(svc, job_id))


def test_a_job_sent_with_the_longest_ttl_holds_its_place_in_the_cap_for_all_of_it(svc):
    """RunPod keeps a job for its policy.ttl, up to 7 days (the spec's most): a job whose webhook has not
    come holds its place under api.max_jobs_in_flight for that long (RunPod may still run and bill it), and
    frees it once its ttl, its /run timeout and ten minutes have passed."""
    week_ms = 7 * 24 * 3600 * 1000
    svc.app.config = dataclasses.replace(svc.app.config, max_jobs_in_flight=1, ttl_ms=week_ms)
    svc.create()
    start = svc.clock[0]
    svc.clock[0] = start + 6.5 * 24 * 3600
    status, body, headers = svc.call("POST", "/api/queue/create", CREATE)
    assert (status, body["error"]["code"], headers.get("retry-after")) == (429, "queue_full", "30"), body
    svc.clock[0] = start + (week_ms + 10_000 + 600_000) / 1000
    assert svc.call("POST", "/api/queue/create", CREATE)[0] == 202


PREVIOUS = "whs-PreviousSecret-3e5a7c9b1d0f"


def test_while_a_previous_secret_is_kept_a_signature_by_neither_secret_is_still_refused(svc, log_lines):
    """During a rotation a webhook or result URL signed by the current or the previous secret passes; one
    signed by neither (a forger's 64 hex digits, a third secret) is still refused: a 401 for the webhook, a
    403 for the result, and the job is untouched."""
    svc.app.config = dataclasses.replace(svc.app.config, webhook_secret_previous=PREVIOUS)
    job_id = svc.create()["job_id"]
    image = svc.put_result(job_id)
    completed = svc.completed(job_id, [image])
    before = svc.job(job_id)
    for sig in ("ab" * 32, webhook_signature("whs-AnotherSecret-000000000000", job_id)):
        status, body, _ = svc.deliver(job_id, completed, sig=sig)
        assert (status, body["error"]["code"]) == (401, "bad_signature"), body
    assert svc.job(job_id) == before
    exp = str(int(svc.clock[0]) + 600)
    for sig in ("cd" * 32, result_signature("whs-AnotherSecret-000000000000", image["key"], int(exp))):
        status, body, _ = svc.call("GET", f"/api/result/{image['key']}", token=None,
                                   query=f"exp={exp}&sig={sig}")
        assert status == 403, body
    # the previous secret's signatures still pass, as the rotation promises
    status, body, _ = svc.call("GET", f"/api/result/{image['key']}", token=None,
                               query=f"exp={exp}&sig={result_signature(PREVIOUS, image['key'], int(exp))}")
    assert status == 200, body
    status, body, _ = svc.deliver(job_id, completed, sig=webhook_signature(PREVIOUS, job_id))
    assert (status, body["status"]) == (200, "completed"), body
    assert result_signed_with(WEBHOOK_SECRET, PREVIOUS, image["key"], exp, "ef" * 32, svc.clock[0]) is None
    assert webhook_signed_with(WEBHOOK_SECRET, PREVIOUS, job_id, "ef" * 32) is None


def test_a_write_through_query_on_a_full_d1_is_storage_full_too(entry, tmp_path, fake_runpod):
    """As the local adapter's: retention's statements go through `query` on D1, and a full D1 refusing one
    is StorageFull (what the core answers 503 `storage_full` for), not the binding's bare JS error."""
    env = make_env(tmp_path, fake_runpod.base)
    d1 = env.DB
    d1.conn.execute("VACUUM")
    pages = d1.conn.execute("PRAGMA page_count").fetchone()[0]
    d1.conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StorageFull, match="the D1 database is full"):
        asyncio.run(entry.D1Database(d1).query("INSERT INTO retention_cursor (walk, reached) VALUES (?, ?) "
                                               "RETURNING walk", ("review19", "x" * 6000)))


def test_a_clock_a_few_seconds_behind_the_creations_records_an_end_to_end_time_of_0(svc, log_lines):
    """The webhook's request reads a clock a few seconds behind the one the create read (two machines on
    Cloudflare): within the minute two clocks may differ, the job's end-to-end time is 0 ms, as fast as it
    can be, not a value dropped as the clock's fault."""
    _, metrics = _complete(svc, -5, delay_ms=0, execution_ms=300, elapsed_s=0)
    assert metrics["e2e_ms"] == 0, metrics
    finished = _finished(log_lines)
    assert finished["e2e_ms"] == 0 and "clock_suspect" not in (finished["data"] or {}), finished


def _nested(depth: int) -> bytes:
    """A create body `depth` arrays and objects deep: its prompt is a list `depth - 2` deep; a sibling object
    makes more brackets than levels."""
    prompt = "[" * (depth - 2) + "]" * (depth - 2)
    return b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": ' + prompt.encode() + b'}, "x": {}}'


def test_a_body_nested_past_128_levels_is_refused_before_it_is_parsed_and_128_are_read(svc):
    """The Worker's parser (Pyodide) has no depth bound of its own and kills the isolate a few thousand
    levels down, so both runtimes refuse past 128, the bound the 400 names; 128 levels are read (and this
    one's prompt, a list, refused for what it is)."""
    status, body, _ = svc.call("POST", "/api/queue/create", raw=_nested(129))
    assert (status, body["error"]["code"]) == (400, "invalid_json"), body
    assert "nested too deeply (over 128 levels)" in body["error"]["message"], body
    status, body, _ = svc.call("POST", "/api/queue/create", raw=_nested(128))
    assert status == 400 and body["error"]["code"] != "invalid_json", body
    assert svc.fake.runs == [] and svc.rows("SELECT id FROM jobs") == []
