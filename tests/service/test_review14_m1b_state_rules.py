"""Review 14 (m1b): state rules of the service core that no test held (the rest of the m1 mutation audit)."""

from __future__ import annotations

import json

import pytest

from service.http import ApiError
from service.jobs import MAX_INPUTS_JSON_BYTES, check_inputs_size

BODY = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}


def _finished_line(log_lines) -> dict:
    [line] = [obj for obj in map(json.loads, log_lines) if obj["event"] == "job.finished"]
    return line


@pytest.mark.parametrize(("execution_ms", "kept"), [(10_000, True), (70_000, True), (70_001, False)])
def test_a_run_time_a_little_longer_than_the_jobs_age_is_kept_up_to_a_minute_over(svc, log_lines, execution_ms,
                                                                                  kept):
    # RunPod's clock and ours are read at different points: an executionTime up to a minute longer than the job has
    # existed is RunPod's measurement (kept, and billed); past that it is wrong (null, no cost, named in the line).
    job = svc.create()["job_id"]
    image = svc.put_result(job)
    svc.clock[0] += 10  # the job is 10 s old when its webhook comes
    body = svc.deliver(job, svc.completed(job, [image], execution_ms=execution_ms, delay_ms=500))[1]
    assert body == {"applied": True, "reason": "applied", "status": "completed"}
    timings = svc.call("GET", f"/api/status/{job}")[1]["timings"]
    assert timings["run_ms"] == (execution_ms if kept else None)
    [m] = svc.rows("SELECT runpod_run_duration_ms, cost_estimate_usd FROM job_metrics")
    assert m["runpod_run_duration_ms"] == (execution_ms if kept else None)
    assert m["cost_estimate_usd"] == (pytest.approx(0.00031 * -(-execution_ms // 1000)) if kept else None)
    unusable = (_finished_line(log_lines)["data"] or {}).get("unusable_runpod_timings", [])
    assert unusable == ([] if kept else ["executionTime"])


def test_a_running_job_shows_no_finished_at_until_it_ends(svc):
    job = svc.create()["job_id"]
    rid = svc.runpod_id(job)
    svc.clock[0] += 5
    assert svc.deliver(job, {"id": rid, "status": "IN_PROGRESS", "delayTime": 700})[1]["status"] == "in_progress"
    view = svc.call("GET", f"/api/status/{job}")[1]
    assert (view["status"], view["timings"]["finished_at"]) == ("in_progress", None)
    image = svc.put_result(job)
    svc.clock[0] += 3
    svc.deliver(job, svc.completed(job, [image]))
    view = svc.call("GET", f"/api/status/{job}")[1]
    assert (view["status"], view["timings"]["finished_at"]) == ("completed", "2027-01-15T08:00:08.000Z")


def test_a_create_retried_just_under_a_day_later_with_the_same_key_still_answers_the_first_job(svc):
    # The key is kept for a day (idempotency.WINDOW_S), not minutes: a client whose retries back off for hours
    # still gets its job back, and RunPod runs it once.
    headers = {"idempotency-key": "k-hour"}
    status, first, _ = svc.call("POST", "/api/queue/create", BODY, headers=headers)
    assert status == 202
    svc.clock[0] += 24 * 3600 - 1
    status, second, got = svc.call("POST", "/api/queue/create", BODY, headers=headers)
    assert status == 202 and second["job_id"] == first["job_id"] and got["idempotent-replayed"] == "true"
    assert len(svc.fake.runs) == 1


def test_a_webhook_read_on_a_clock_behind_the_creating_one_records_no_negative_end_to_end_time(svc):
    # The create and the webhook run in different Worker invocations, on machines whose clocks differ a little: a
    # webhook read 2 s "before" the job was created took no negative time (and a negative e2e would pull every
    # percentile down and fail the log schema).
    job = svc.create()["job_id"]
    image = svc.put_result(job)
    svc.clock[0] -= 2
    body = svc.deliver(job, svc.completed(job, [image], execution_ms=1000, delay_ms=0))[1]
    assert body == {"applied": True, "reason": "applied", "status": "completed"}
    assert svc.call("GET", f"/api/status/{job}")[1]["timings"]["e2e_ms"] == 0
    assert svc.rows("SELECT e2e_ms FROM job_metrics") == [{"e2e_ms": 0}]


def test_whitespace_around_an_idempotency_key_is_no_part_of_it(svc):
    # RFC 9110 5.5: spaces and tabs around a field value are not part of it; an adapter that hands the header over
    # untrimmed must not turn a retry into a 400 or a second job.
    status, first, _ = svc.call("POST", "/api/queue/create", BODY, headers={"idempotency-key": "\tk-ows "})
    assert status == 202
    status, second, got = svc.call("POST", "/api/queue/create", BODY, headers={"idempotency-key": "k-ows"})
    assert status == 202 and second["job_id"] == first["job_id"] and got["idempotent-replayed"] == "true"
    assert len(svc.fake.runs) == 1


def test_a_failed_delivery_carrying_its_error_in_the_output_shows_that_error(svc):
    # A handler's {"error": ...} is RunPod's top-level `error`; one that reaches us inside the output instead still
    # names the failure, not "worker reported FAILED".
    job = svc.create()["job_id"]
    payload = {"id": svc.runpod_id(job), "status": "FAILED", "executionTime": 900,
               "output": {"error": "CUDA out of memory"}}
    assert svc.deliver(job, payload)[1] == {"applied": True, "reason": "applied", "status": "failed"}
    assert svc.call("GET", f"/api/status/{job}")[1]["error"] == "CUDA out of memory"


def test_inputs_of_exactly_the_size_a_job_row_keeps_are_accepted_and_one_byte_more_is_a_413():
    overhead = len('{"prompt":""}')
    check_inputs_size({"prompt": "x" * (MAX_INPUTS_JSON_BYTES - overhead)})
    with pytest.raises(ApiError) as refused:
        check_inputs_size({"prompt": "x" * (MAX_INPUTS_JSON_BYTES - overhead + 1)})
    assert (refused.value.status, refused.value.code) == (413, "inputs_too_large")


def test_a_delivery_naming_a_runpod_id_over_128_characters_is_refused_and_changes_nothing(svc):
    job = svc.create()["job_id"]
    before = svc.job(job)
    status, body, _ = svc.deliver(job, {"id": "r" * 129, "status": "FAILED", "error": "x"})
    assert status == 400, body
    assert (body["error"]["code"], body["error"]["field"]) == ("invalid_payload", "id")
    assert svc.job(job) == before and svc.rows("SELECT * FROM webhook_deliveries") == []
