"""What an operator reads: log lines carry the job's trace and the image that ran it, error paths name
the job, RunPod's timings never cost a job its outcome, and metrics match the job records."""

from __future__ import annotations

import json

import pytest

from service.metrics import normalize_since

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CONFIGURED_TAG = "local/worker@sha256:" + "a" * 64
RAN_TAG = "local/worker@sha256:" + "b" * 64


def _lines(log_lines, **match):
    found = [json.loads(line) for line in log_lines]
    return [obj for obj in found if all(obj.get(k) == v for k, v in match.items())]


def _create_traced(svc):
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                              "inputs": {"prompt": "a lighthouse"}},
                               headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
    assert status == 202 and body["trace_id"] == TRACE
    return body


def test_the_trace_id_a_client_sends_reaches_runpod_the_finished_log_line_and_the_status(svc, log_lines):
    job = _create_traced(svc)
    assert svc.fake.runs[-1]["input"]["trace_id"] == TRACE
    image = svc.put_result(job["job_id"])
    svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))
    [finished] = _lines(log_lines, event="job.finished")
    assert finished["trace_id"] == TRACE and finished["job_id"] == job["job_id"]
    assert svc.call("GET", f"/api/status/{job['job_id']}")[1]["trace_id"] == TRACE


def test_the_finished_log_line_names_the_image_that_ran_the_job_not_the_configured_one(svc, log_lines):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))
    [finished] = _lines(log_lines, event="job.finished")
    assert finished["worker_image_tag"] == RAN_TAG
    assert svc.call("GET", f"/api/status/{job['job_id']}")[1]["worker_image_tag"] == RAN_TAG
    assert svc.rows("SELECT worker_image_tag FROM job_metrics")[0]["worker_image_tag"] == RAN_TAG


@pytest.mark.parametrize("payload", [b"{oops", b'{"id": "r", "status": "DONE"}'])
def test_a_webhook_refused_as_malformed_logs_an_error_naming_the_job_and_its_trace(svc, log_lines, payload):
    job = _create_traced(svc)
    log_lines.clear()
    status, _, _ = svc.call("POST", "/api/runpod/webhook", raw=payload, token=None,
                            query=f"job={job['job_id']}&sig={_sig(job['job_id'])}")
    assert status == 400
    [line] = _lines(log_lines)
    assert line["level"] == "error" and line["job_id"] == job["job_id"] and line["trace_id"] == TRACE
    assert line["reason"] in ("invalid_json", "invalid_payload")


def test_a_webhook_refused_because_the_store_is_down_names_the_job_and_its_trace(svc, log_lines):
    from service.s3_store import S3ResultStore

    job = _create_traced(svc)
    image = svc.put_result(job["job_id"])
    svc.app.transitions.store = S3ResultStore.connect("http://127.0.0.1:9", "b", "k", "s")
    log_lines.clear()
    status, _, _ = svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))
    assert status == 503
    [line] = _lines(log_lines)
    assert line["level"] == "error" and line["reason"] == "store_unavailable"
    assert line["job_id"] == job["job_id"] and line["trace_id"] == TRACE


def test_a_webhook_for_a_job_the_database_does_not_hold_names_the_job(svc, log_lines):
    missing = "e" * 32
    status, _, _ = svc.deliver(missing, {"id": "r-1", "status": "FAILED", "error": "x"})
    assert status == 404
    [line] = _lines(log_lines)
    assert line["job_id"] == missing and line["level"] in ("warning", "error") and line["reason"] == "unknown_job"


@pytest.mark.parametrize(("mode", "status", "code"), [("error", 503, "runpod_unavailable"),
                                                      ("bad_answer", 502, "runpod_bad_answer")])
def test_a_failed_recovery_logs_the_job_and_its_trace(svc, log_lines, mode, status, code):
    job = _create_traced(svc)
    rid = svc.runpod_id(job["job_id"])
    if mode == "error":
        svc.fake.status_mode = "error"
    else:
        svc.fake.set_status(rid, {"id": rid, "status": "PAUSED"})
    log_lines.clear()
    got, body, _ = svc.call("POST", f"/api/admin/recover/{job['job_id']}")
    assert (got, body["error"]["code"]) == (status, code)
    [line] = _lines(log_lines)
    assert line["level"] == "error" and line["reason"] == code
    assert line["job_id"] == job["job_id"] and line["trace_id"] == TRACE and line["runpod_job_id"] == rid


def _sig(job_id):
    from service_testkit import WEBHOOK_SECRET

    from service.signing import webhook_signature
    return webhook_signature(WEBHOOK_SECRET, job_id)


@pytest.mark.parametrize(("delay", "execution", "queue_ms", "run_ms", "usd"), [
    ("800", "2500", 800, 2500, 0.00031 * 3),  # numbers sent as strings
    (800.9, 2500.2, 800, 2500, 0.00031 * 3),
    (None, None, None, None, None),  # missing: no duration, no cost (never a guess)
    (0, 0, 0, 0, 0.0),
    (-5, "soon", None, None, None),
    (10**13, 10**13, None, None, None),  # past any job's life: RunPod's figure is wrong
    (10**400, 2500, None, 2500, 0.00031 * 3),  # a 401-digit integer: one unusable timing, the other kept
    (3_600_000, 3_600_000, None, None, None),  # an hour, for a job created 10 s ago
    (True, [1], None, None, None),
])
def test_unusable_runpod_timings_never_cost_the_job_its_outcome(svc, log_lines, delay, execution, queue_ms, run_ms,
                                                               usd):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    svc.clock[0] += 10
    payload = svc.completed(job["job_id"], [image])
    for name, value in (("delayTime", delay), ("executionTime", execution)):
        if value is None:
            payload.pop(name)
        else:
            payload[name] = value
    status, body, _ = svc.deliver(job["job_id"], payload)
    assert (status, body["status"]) == (200, "completed"), body
    [m] = svc.rows("SELECT * FROM job_metrics")
    assert (m["runpod_queue_duration_ms"], m["runpod_run_duration_ms"], m["e2e_ms"]) == (queue_ms, run_ms, 10_000)
    assert m["cost_estimate_usd"] == (pytest.approx(usd) if usd is not None else None)
    view = svc.call("GET", f"/api/status/{job['job_id']}")[1]
    assert (view["timings"]["queue_ms"], view["timings"]["run_ms"]) == (queue_ms, run_ms)
    [finished] = _lines(log_lines, event="job.finished")
    unusable = (finished["data"] or {}).get("unusable_runpod_timings", [])
    assert ("delayTime" in unusable) == (delay is not None and queue_ms is None)
    assert ("executionTime" in unusable) == (execution is not None and run_ms is None)


def test_a_recovery_whose_runpod_timings_are_unusable_still_records_the_outcome(svc):
    job = svc.create()
    rid = svc.runpod_id(job["job_id"])
    svc.fake.set_status(rid, {"id": rid, "status": "FAILED", "executionTime": "soon", "error": "CUDA error"})
    status, body, _ = svc.call("POST", f"/api/admin/recover/{job['job_id']}")
    assert (status, body["status"]) == (200, "failed")
    [m] = svc.rows("SELECT * FROM job_metrics")
    assert m["status"] == "failed" and m["runpod_run_duration_ms"] is None


def test_a_recovered_job_gets_the_same_metrics_row_as_a_webhook(svc):
    rows = []
    for source in ("webhook", "recover"):
        job = svc.create()
        image = svc.put_result(job["job_id"])
        svc.clock[0] += 5
        payload = svc.completed(job["job_id"], [image], execution_ms=2001, delay_ms=900)
        if source == "webhook":
            svc.deliver(job["job_id"], payload)
        else:
            svc.fake.set_status(payload["id"], payload)
            assert svc.call("POST", f"/api/admin/recover/{job['job_id']}")[0] == 200
        [m] = svc.rows("SELECT * FROM job_metrics WHERE job_id = ?", (job["job_id"],))
        rows.append({k: v for k, v in m.items() if k not in ("job_id", "created_at")})
    # but its end-to-end time: the time until an operator's recovery is no latency (WEBHOOK_SEMANTICS.md, "Timings")
    assert (rows[0].pop("e2e_ms"), rows[1].pop("e2e_ms")) == (5000, None)
    assert rows[0] == rows[1]
    assert rows[0]["worker_image_tag"] == RAN_TAG and rows[0]["cost_estimate_usd"] == pytest.approx(0.00031 * 3)


def test_since_counts_a_job_created_before_it_out_even_below_a_millisecond():
    # a job created at .000 is before .0005: rounding `since` down would count it
    assert normalize_since("2026-01-01T00:00:00.0005Z") == "2026-01-01T00:00:00.001Z"
    assert normalize_since("2026-01-01T00:00:00.999999Z") == "2026-01-01T00:00:01.000Z"
    assert normalize_since("2026-01-01T00:00:00.123Z") == "2026-01-01T00:00:00.123Z"


def test_a_job_runpod_never_took_is_not_charged_to_the_configured_image(svc):
    # No worker ran it: counting it against the configured tag would show a RunPod outage as that
    # image's error rate (during a rollout, the new image's).
    svc.fake.run_mode = "error"
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                              "inputs": {"prompt": "x"}})
    assert status == 503
    job_id = body["error"]["job_id"]
    assert svc.call("GET", f"/api/status/{job_id}")[1]["worker_image_tag"] is None
    report = svc.call("GET", "/api/metrics")[1]
    assert [(g["worker_image_tag"], g["errors"]) for g in report["by_worker_image_tag"]] == [(None, 1)]


def test_a_webhook_too_large_to_read_names_the_job_and_its_trace(svc, log_lines):
    job = _create_traced(svc)
    log_lines.clear()
    status, _, _ = svc.deliver(job["job_id"], {"id": svc.runpod_id(job["job_id"]), "status": "FAILED",
                                               "error": "x" * (12 << 20)})
    assert status == 413
    [line] = _lines(log_lines)
    assert (line["event"], line["job_id"], line["trace_id"]) == ("webhook.body_too_large", job["job_id"], TRACE)


class _FailingDb:
    def __init__(self, db):
        self.db = db

    def __getattr__(self, name):
        return getattr(self.db, name)

    async def query(self, sql, params=()):
        import sqlite3
        raise sqlite3.OperationalError("D1_ERROR: Network connection lost.")


def test_a_status_read_that_fails_names_the_job_in_its_error_line(svc, log_lines):
    job = svc.create()
    svc.app.db = _FailingDb(svc.app.db)
    log_lines.clear()
    status, body, _ = svc.call("GET", f"/api/status/{job['job_id']}")
    assert status == 500 and body["error"]["code"] == "internal"
    [line] = _lines(log_lines)
    assert (line["level"], line["event"], line["job_id"]) == ("error", "job.status_failed", job["job_id"])
    assert line["error"]["message"] == "D1_ERROR: Network connection lost."


def test_a_result_read_refused_because_the_store_is_down_names_the_job_and_its_trace(svc, log_lines):
    from service.s3_store import S3ResultStore

    job = _create_traced(svc)
    image = svc.put_result(job["job_id"])
    svc.app.store = S3ResultStore.connect("http://127.0.0.1:9", "b", "k", "s")
    log_lines.clear()
    status, body, _ = svc.call("GET", f"/api/result/{image['key']}")
    assert status == 503 and body["error"]["code"] == "store_unavailable"
    [line] = _lines(log_lines)
    assert (line["level"], line["job_id"], line["trace_id"]) == ("error", job["job_id"], TRACE)


@pytest.mark.parametrize(("header", "kept"), [
    (f"00-{TRACE}-00f067aa0ba902b7-01", True),
    (f" 00-{TRACE}-00f067aa0ba902b7-00 ", True),  # optional whitespace around a field value
    (f"01-{TRACE}-00f067aa0ba902b7-01-what-a-later-version-adds", True),  # W3C: read what version 00 defines
    (f"ff-{TRACE}-00f067aa0ba902b7-01", False),  # version ff is invalid
    (f"00-{TRACE}-00f067aa0ba902b7-01-extra", False),  # version 00 has exactly four fields
    (f"00-{TRACE}-0000000000000000-01", False),  # an all-zero parent id is invalid
    (f"00-{TRACE.upper()}-00f067aa0ba902b7-01", False),
    ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", False),
])
def test_the_trace_id_follows_w3c_trace_context_parsing(svc, header, kept):
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                              "inputs": {"prompt": "a lighthouse"}},
                               headers={"traceparent": header})
    assert status == 202
    assert (body["trace_id"] == TRACE) is kept
    assert svc.fake.runs[-1]["input"]["trace_id"] == body["trace_id"]


def test_a_job_the_database_cannot_record_is_logged_with_the_clients_trace(svc, log_lines):
    class _NoWrites(_FailingDb):
        async def query(self, sql, params=()):
            return await self.db.query(sql, params)

        async def execute(self, sql, params=()):
            import sqlite3
            raise sqlite3.OperationalError("D1_ERROR: Network connection lost.")

    svc.app.db = _NoWrites(svc.app.db)
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                              "inputs": {"prompt": "a lighthouse"}},
                               headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
    assert (status, body["error"]["code"]) == (500, "internal") and svc.fake.runs == []
    [line] = _lines(log_lines)
    assert (line["level"], line["event"], line["trace_id"]) == ("error", "job.create_failed", TRACE)
    assert line["job_id"] is not None and line["workflow_version"] == "sdxl-txt2img@1.0.0"


def test_an_error_line_after_a_job_event_keeps_the_jobs_context_not_the_stacks(svc, log_lines):
    # The recovery's line is the job's (job.recover_failed): the stack-wide defaults must not replace what the
    # job's events put on it.
    job = _create_traced(svc)
    image = svc.put_result(job["job_id"])
    svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))
    svc.fake.status_mode = "error"
    log_lines.clear()
    assert svc.call("POST", f"/api/admin/recover/{job['job_id']}")[0] == 503
    [line] = _lines(log_lines)
    assert (line["event"], line["worker_image_tag"], line["trace_id"]) == ("job.recover_failed", RAN_TAG, TRACE)
