"""The service's wall clock steps (NTP, a VM resumed, a clock set by hand) between a job's creation and its webhook.
Both ends of its end-to-end time are that clock, read by different requests: a step lands in the figure. RunPod's
own timings are its word (and its bill): a step of our clock must not cost a job its run time and cost, nor put a
0 or a decade into the percentiles. The clock is the harness's injected one (`svc.clock`), stepped by hand."""

from __future__ import annotations

import json

import pytest

from service.metrics import compute

HOUR_S = 3_600
TEN_YEARS_S = 10 * 365 * 86_400
PRICE_4090 = 0.00031  # the flex price of the harness's GPU per second


def _finished(log_lines: list[str]) -> dict:
    [line] = [obj for obj in map(json.loads, log_lines) if obj["event"] == "job.finished"]
    return line


def _complete(svc, step_s: float, *, delay_ms: int = 800, execution_ms: int = 2_500, elapsed_s: float = 5):
    """A job created, `elapsed_s` of real time, then the clock stepped by `step_s`, then RunPod's COMPLETED."""
    job = svc.create()
    image = svc.put_result(job["job_id"])
    svc.clock[0] += elapsed_s + step_s
    status, body, _ = svc.deliver(job["job_id"], svc.completed(job["job_id"], [image], execution_ms=execution_ms,
                                                               delay_ms=delay_ms))
    assert (status, body["status"]) == (200, "completed"), body
    [metrics] = svc.rows("SELECT * FROM job_metrics WHERE job_id = ?", (job["job_id"],))
    return job, metrics


def test_a_clock_stepped_back_an_hour_keeps_runpods_run_time_and_cost(svc, log_lines):
    job, m = _complete(svc, -HOUR_S, execution_ms=2_500)
    # RunPod ran it 2.5 s and bills 3 s, whatever our clock says: it used to be "longer than the job existed" (the
    # job was -3595 s old), so the run time and the cost were dropped.
    assert m["runpod_run_duration_ms"] == 2_500 and m["runpod_queue_duration_ms"] == 800
    assert m["cost_estimate_usd"] == pytest.approx(PRICE_4090 * 3)
    view = svc.call("GET", f"/api/status/{job['job_id']}")[1]
    assert view["timings"]["run_ms"] == 2_500
    finished = _finished(log_lines)
    assert "unusable_runpod_timings" not in (finished["data"] or {})


def test_a_clock_stepped_back_records_no_end_to_end_time_and_says_why(svc, log_lines):
    _, m = _complete(svc, -HOUR_S)
    # Not 0 ms (a job that took 5 s pulled P50 towards 0): no value, as for a job recovered from its stored outcome.
    assert m["e2e_ms"] is None
    finished = _finished(log_lines)
    suspect = finished["data"]["clock_suspect"]
    assert suspect["job_age_ms"] == -(HOUR_S - 5) * 1000 and "stepped back" in suspect["why"]
    assert finished["e2e_ms"] is None


def test_an_end_to_end_time_shorter_than_runpods_own_times_is_not_recorded(svc, log_lines):
    # Stepped back 90 s during a 100 s job: 10 s by our clock, while RunPod queued it 50 s and ran it 50 s.
    _, m = _complete(svc, -90, delay_ms=50_000, execution_ms=50_000, elapsed_s=100)
    assert (m["runpod_queue_duration_ms"], m["runpod_run_duration_ms"]) == (50_000, 50_000)
    assert m["e2e_ms"] is None
    assert "younger" in _finished(log_lines)["data"]["clock_suspect"]["why"]


def test_a_clock_ten_years_ahead_puts_no_decade_into_the_percentiles(svc, log_lines):
    _, m = _complete(svc, TEN_YEARS_S)
    assert m["e2e_ms"] is None  # was 315,360,005,000 ms: P99 for as long as the row is kept
    assert m["runpod_run_duration_ms"] == 2_500 and m["cost_estimate_usd"] == pytest.approx(PRICE_4090 * 3)
    assert "stepped ahead" in _finished(log_lines)["data"]["clock_suspect"]["why"]
    report = svc.run(compute(svc.db))
    assert report["overall"]["e2e_ms"]["p99"] is None and report["overall"]["count"] == 1


def test_a_steady_clock_records_the_end_to_end_time_and_no_suspicion(svc, log_lines):
    _, m = _complete(svc, 0, delay_ms=1_000, execution_ms=3_000, elapsed_s=5)
    assert m["e2e_ms"] == 5_000
    assert "clock_suspect" not in (_finished(log_lines)["data"] or {})


def test_a_late_but_possible_end_to_end_time_is_kept(svc, log_lines):
    # An hour after creation, inside the job's ttl (a day): a forward step of an hour looks the same as an hour in
    # RunPod's queue; it is kept, as the job's status showed it waiting that long.
    _, m = _complete(svc, HOUR_S)
    assert m["e2e_ms"] == (HOUR_S + 5) * 1000


def test_an_hour_behind_still_bounds_runpods_absurd_figures(svc, log_lines):
    # With the job's age unknown, RunPod's figures are bounded by the job's ttl (a day): two days is not a run time.
    _, m = _complete(svc, -HOUR_S, execution_ms=2 * 86_400_000)
    assert m["runpod_run_duration_ms"] is None and m["cost_estimate_usd"] is None
    assert "executionTime" in _finished(log_lines)["data"]["unusable_runpod_timings"]
