"""Webhook invariants: signatures, idempotency, ordering, terminal rules, retries and result checks."""

from __future__ import annotations

import asyncio
import json

import pytest
from service_testkit import WEBHOOK_SECRET

from service.http import Request
from service.signing import webhook_signature


def _deliveries(svc, job_id):
    return svc.rows("SELECT runpod_status, applied, outcome FROM webhook_deliveries WHERE job_id = ? ORDER BY rowid",
                    (job_id,))


def _metrics(svc, job_id):
    return svc.rows("SELECT * FROM job_metrics WHERE job_id = ?", (job_id,))


def _failed(svc, job_id, error="worker crashed", execution_ms=1000):
    return {"id": svc.runpod_id(job_id), "status": "FAILED", "delayTime": 50, "executionTime": execution_ms,
            "error": error}


@pytest.mark.parametrize("sig", ["", "0" * 64, "zz", "A" * 65, None])
def test_a_missing_or_wrong_signature_is_401_and_changes_nothing(svc, sig):
    job = svc.create()
    query = f"job={job['job_id']}" + (f"&sig={sig}" if sig is not None else "")
    status, body, _ = svc.call("POST", "/api/runpod/webhook", _failed(svc, job["job_id"]), token=None, query=query)
    assert status == 401 and body["error"]["code"] == "bad_signature"
    assert svc.job(job["job_id"])["status"] == "queued" and _deliveries(svc, job["job_id"]) == []


def test_a_valid_signature_for_another_job_is_refused(svc):
    victim, other = svc.create(), svc.create()
    other_sig = webhook_signature(WEBHOOK_SECRET, other["job_id"])
    status, _, _ = svc.deliver(victim["job_id"], _failed(svc, victim["job_id"]), sig=other_sig)
    assert status == 401 and svc.job(victim["job_id"])["status"] == "queued"


def test_a_malformed_job_parameter_is_401(svc):
    for query in ("", "job=../x&sig=" + "0" * 64, "job=" + "a" * 32):
        assert svc.call("POST", "/api/runpod/webhook", {}, token=None, query=query)[0] == 401


@pytest.mark.parametrize(("payload", "field"), [
    ([1], None), ({"status": "COMPLETED"}, "id"), ({"id": "", "status": "COMPLETED"}, "id"),
    ({"id": "r", "status": "DONE"}, "status"), ({"id": "r", "status": ["FAILED"]}, "status"), ({"id": "r", "status": {"FAILED": 1}}, "status"),
])
def test_a_malformed_payload_is_400_naming_the_field(svc, payload, field):
    job = svc.create()
    status, body, _ = svc.deliver(job["job_id"], payload)
    assert status == 400 and body["error"]["code"] == "invalid_payload"
    assert body["error"].get("field") == field
    status, body, _ = svc.call("POST", "/api/runpod/webhook", raw=b"{oops", token=None,
                               query=f"job={job['job_id']}&sig={webhook_signature(WEBHOOK_SECRET, job['job_id'])}")
    assert status == 400 and body["error"]["code"] == "invalid_json"


def test_a_duplicate_delivery_changes_nothing_and_records_nothing_twice(svc):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    payload = svc.completed(job["job_id"], [image])
    assert svc.deliver(job["job_id"], payload)[1] == {"applied": True, "reason": "applied", "status": "completed"}
    before = svc.job(job["job_id"])
    for _ in range(3):
        assert svc.deliver(job["job_id"], payload)[1] == {"applied": False, "reason": "duplicate",
                                                          "status": "completed"}
    assert svc.job(job["job_id"]) == before
    assert _deliveries(svc, job["job_id"]) == [{"runpod_status": "COMPLETED", "applied": 1, "outcome": "applied"}]
    assert len(_metrics(svc, job["job_id"])) == 1


def test_a_stale_delivery_is_ignored_and_logged_out_of_order(svc, log_lines):
    job = svc.create()
    rid = svc.runpod_id(job["job_id"])
    image = svc.put_result(job["job_id"])
    assert svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))[1]["reason"] == "applied"
    for stale in ({"id": rid, "status": "IN_PROGRESS", "delayTime": 800},
                  {"id": rid, "status": "IN_QUEUE"}):
        status, body, _ = svc.deliver(job["job_id"], stale)
        assert status == 200 and body == {"applied": False, "reason": "out_of_order", "status": "completed"}
    assert svc.job(job["job_id"])["status"] == "completed"
    assert sum('"event":"webhook.out_of_order"' in line for line in log_lines) == 2
    assert sum('"reason":"out_of_order"' in line for line in log_lines) == 2


def test_concurrent_copies_of_a_stale_delivery_get_one_reason_and_the_rest_duplicate(svc):
    job = svc.create()
    rid = svc.runpod_id(job["job_id"])
    assert svc.deliver(job["job_id"], _failed(svc, job["job_id"]))[1]["reason"] == "applied"
    stale = json.dumps({"id": rid, "status": "IN_PROGRESS", "delayTime": 5}).encode()
    query = f"job={job['job_id']}&sig={webhook_signature(WEBHOOK_SECRET, job['job_id'])}"

    async def copies() -> list[dict]:
        # all copies read the job before any of them records the delivery (writes commit together)
        replies = await asyncio.gather(*[svc.app.handle(Request("POST", "/api/runpod/webhook", query, {}, stale))
                                         for _ in range(4)])
        return [json.loads(r.body) for r in replies]

    reasons = sorted(body["reason"] for body in svc.run(copies()))
    assert reasons == ["duplicate", "duplicate", "duplicate", "out_of_order"]
    assert [d["outcome"] for d in _deliveries(svc, job["job_id"])] == ["applied", "out_of_order"]


def test_progress_then_in_queue_is_out_of_order_but_progress_then_terminal_applies(svc):
    job = svc.create()
    rid = svc.runpod_id(job["job_id"])
    assert svc.deliver(job["job_id"], {"id": rid, "status": "IN_PROGRESS", "delayTime": 10})[1]["reason"] == "applied"
    assert svc.job(job["job_id"])["status"] == "in_progress"
    assert svc.deliver(job["job_id"], {"id": rid, "status": "IN_QUEUE"})[1]["reason"] == "out_of_order"
    assert svc.deliver(job["job_id"], {"id": rid, "status": "IN_PROGRESS", "delayTime": 11})[1]["reason"] == "no_change"
    assert svc.deliver(job["job_id"], _failed(svc, job["job_id"]))[1]["status"] == "failed"
    assert len(_metrics(svc, job["job_id"])) == 1


def test_conflicting_terminal_states_keep_the_first_except_completed_after_a_failure(svc):
    job = svc.create()
    rid = svc.runpod_id(job["job_id"])
    assert svc.deliver(job["job_id"], {"id": rid, "status": "CANCELLED"})[1]["status"] == "cancelled"
    body = svc.deliver(job["job_id"], _failed(svc, job["job_id"]))[1]
    assert body == {"applied": False, "reason": "terminal_conflict", "status": "cancelled"}
    image = svc.put_result(job["job_id"])
    body = svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))[1]
    assert body["reason"] == "terminal_conflict" and svc.job(job["job_id"])["status"] == "cancelled"
    [metric] = _metrics(svc, job["job_id"])
    assert metric["status"] == "cancelled"


def test_after_a_runpod_retry_the_completed_attempt_wins_and_old_attempt_deliveries_are_ignored(svc):
    job = svc.create()
    first_failure = _failed(svc, job["job_id"], "ComfyUI crashed", execution_ms=4000)
    assert svc.deliver(job["job_id"], first_failure)[1]["status"] == "failed"
    assert _metrics(svc, job["job_id"])[0]["status"] == "failed"
    # operator runs RunPod /retry: same RunPod id, new attempt succeeds
    image = svc.put_result(job["job_id"])
    success = svc.completed(job["job_id"], [image], execution_ms=3000)
    assert svc.deliver(job["job_id"], success)[1] == {"applied": True, "reason": "applied", "status": "completed"}
    # late repeats and late deliveries of the old attempt change nothing
    assert svc.deliver(job["job_id"], first_failure)[1]["reason"] == "duplicate"
    assert svc.deliver(job["job_id"], _failed(svc, job["job_id"], "late", 4001))[1]["reason"] == "terminal_conflict"
    row = svc.job(job["job_id"])
    assert row["status"] == "completed" and row["error"] is None
    [metric] = _metrics(svc, job["job_id"])
    assert metric["status"] == "completed" and metric["runpod_run_duration_ms"] == 3000


def test_a_delivery_for_another_runpod_id_is_refused(svc):
    job = svc.create()
    body = svc.deliver(job["job_id"], {"id": "someone-elses-job", "status": "FAILED", "error": "x"})[1]
    assert body == {"applied": False, "reason": "runpod_id_mismatch", "status": "queued"}
    assert svc.job(job["job_id"])["status"] == "queued" and _metrics(svc, job["job_id"]) == []


def test_a_webhook_that_overtakes_the_run_answer_adopts_the_runpod_id(svc):
    job = svc.create()
    svc.run(svc.db.execute("UPDATE jobs SET runpod_job_id = NULL WHERE id = ?", (job["job_id"],)))
    body = svc.deliver(job["job_id"], {"id": "early-id", "status": "FAILED", "executionTime": 10, "error": "x"})[1]
    assert body["reason"] == "applied" and svc.job(job["job_id"])["runpod_job_id"] == "early-id"


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda img, svc, job: {**img, "bytes": img["bytes"] + 1}, "has 21 bytes in the store but the worker reported 22"),
    (lambda img, svc, job: {**img, "key": img["key"].replace("0.png", "missing.png")}, "is missing from the result"),
    (lambda img, svc, job: svc.put_result(job, "page.png", b"<html>x</html>", "text/html"), "Content-Type 'text/html'"),
    (lambda img, svc, job: {**img, "content_type": "image/jpeg"}, "stored as image/png but the worker reported"),
    (lambda img, svc, job: {**img, "key": "results/" + "e" * 32 + "/0.png"}, "is not a result key under"),
    (lambda img, svc, job: {**img, "key": "../../etc/passwd"}, "is not a result key under"),
    (lambda img, svc, job: {**img, "bytes": "21"}, "bytes must be a non-negative integer"),
])
def test_completed_with_a_result_that_does_not_match_the_store_fails_the_job(svc, log_lines, mutate, reason):
    job = svc.create()
    image = svc.put_result(job["job_id"], data=b"\x89PNG fake image bytes")
    bad = mutate(image, svc, job["job_id"])
    body = svc.deliver(job["job_id"], svc.completed(job["job_id"], [image, bad]))[1]
    assert body == {"applied": True, "reason": "applied", "status": "failed"}
    row = svc.job(job["job_id"])
    assert row["status"] == "failed" and reason in row["error"], row["error"]
    assert _metrics(svc, job["job_id"])[0]["status"] == "failed"
    assert any('"event":"job.result_rejected"' in line for line in log_lines)
    _status, view, _ = svc.call("GET", f"/api/status/{job['job_id']}")
    assert view["results"] == [] and reason in view["error"]


@pytest.mark.parametrize("output", [None, {}, {"images": []}, {"images": "x"}, {"images": [7]}])
def test_completed_without_usable_images_fails_the_job(svc, output):
    job = svc.create()
    payload = {"id": svc.runpod_id(job["job_id"]), "status": "COMPLETED", "executionTime": 5, "output": output}
    assert svc.deliver(job["job_id"], payload)[1]["status"] == "failed"


def test_terminal_jobs_get_one_metrics_row_with_timings_and_cost(svc):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    svc.clock[0] += 7.25
    svc.deliver(job["job_id"], svc.completed(job["job_id"], [image], execution_ms=2001, delay_ms=900))
    [m] = _metrics(svc, job["job_id"])
    assert m["status"] == "completed" and m["runpod_queue_duration_ms"] == 900
    assert m["runpod_run_duration_ms"] == 2001 and m["e2e_ms"] == 7250
    assert m["gpu_type"] == "NVIDIA GeForce RTX 4090" and m["workflow_version"] == "sdxl-txt2img@1.0.0"
    assert m["worker_image_tag"] == "local/worker@sha256:" + "b" * 64
    assert m["cost_estimate_usd"] == pytest.approx(0.00031 * 3)  # 2001 ms bills as 3 s
    assert m["stack"] == "test"


def test_timed_out_and_cancelled_are_terminal_with_a_clear_error(svc):
    for status, expected in (("TIMED_OUT", "timed_out"), ("CANCELLED", "cancelled")):
        job = svc.create()
        body = svc.deliver(job["job_id"], {"id": svc.runpod_id(job["job_id"]), "status": status})[1]
        assert body["status"] == expected
        assert status in svc.job(job["job_id"])["error"]
        assert _metrics(svc, job["job_id"])[0]["status"] == expected


def test_the_store_being_down_answers_503_and_records_nothing(svc):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    from service.s3_store import S3ResultStore
    svc.app.transitions.store = S3ResultStore.connect("http://127.0.0.1:9", "b", "k", "s")
    status, body, _ = svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))
    assert status == 503 and body["error"]["code"] == "store_unavailable"
    assert svc.job(job["job_id"])["status"] == "queued" and _deliveries(svc, job["job_id"]) == []


def _deliver_raw(svc, job_id, raw):
    return svc.call("POST", "/api/runpod/webhook", raw=raw, token=None,
                    query=f"job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}")


@pytest.mark.parametrize(("fields", "code", "needle"), [
    (b'"delayTime": ' + b"9" * 5000, "invalid_json", "more than 4300 digits"),
    (b'"error": ' + b"[" * 20_000 + b"]" * 20_000, "invalid_json", "nested too deeply"),
    (b'"output": {"timings": {"total_ms": NaN}}', "invalid_json", "NaN"),
    (b'"output": {"timings": {"total_ms": Infinity}}', "invalid_json", "Infinity"),
    (b'"output": {"timings": {"total_ms": 1e999}}', "invalid_json", "1e999"),
])
def test_a_payload_python_cannot_take_or_json_cannot_hold_is_400_and_changes_nothing(svc, fields, code, needle):
    job = svc.create()
    raw = b'{"id": "%s", "status": "IN_PROGRESS", ' % svc.runpod_id(job["job_id"]).encode() + fields + b"}"
    status, body, _ = _deliver_raw(svc, job["job_id"], raw)
    assert status == 400 and body["error"]["code"] == code and needle in body["error"]["message"], body
    assert svc.job(job["job_id"])["status"] == "queued" and _deliveries(svc, job["job_id"]) == []
    assert svc.call("GET", f"/api/status/{job['job_id']}")[0] == 200


def test_a_lone_surrogate_in_the_error_text_is_stored_as_a_replacement_character(svc):
    # JSON may escape half a UTF-16 pair (a worker's error text holding surrogate-escaped file name
    # bytes); UTF-8, SQLite and the log cannot hold it. The failure must still be recorded, once.
    job = svc.create()
    raw = b'{"id": "%s", "status": "FAILED", "error": "cannot read /models/\\udcff.ckpt"}' % (
        svc.runpod_id(job["job_id"]).encode())
    status, body, _ = _deliver_raw(svc, job["job_id"], raw)
    assert (status, body) == (200, {"applied": True, "reason": "applied", "status": "failed"})
    assert svc.job(job["job_id"])["error"] == "cannot read /models/\ufffd.ckpt"
    assert _deliver_raw(svc, job["job_id"], raw)[1]["reason"] == "duplicate"
    assert len(_metrics(svc, job["job_id"])) == 1
    # a proper pair is one character and stays as it is
    other = svc.create()
    raw = b'{"id": "%s", "status": "FAILED", "error": "\\ud83d\\ude00 \\\\ud800"}' % (
        svc.runpod_id(other["job_id"]).encode())
    assert _deliver_raw(svc, other["job_id"], raw)[1]["status"] == "failed"
    assert svc.job(other["job_id"])["error"] == "\U0001F600 \\ud800"


class _AnswerLostAfterTheWebhook:
    """RunPod takes the job and runs it; its webhook reaches us, then /run's own answer is lost
    (the connection times out, or a proxy in front of RunPod answers 502)."""

    def __init__(self, svc, runpod_status):
        self.svc, self.inner, self.runpod_status = svc, svc.app.runpod, runpod_status

    async def run(self, body):
        from service.runpod import RunPodUnavailable

        reply = await self.inner.run(body)
        job_id = body["input"]["job_id"]
        delivery = {"id": reply["id"], "status": self.runpod_status, "delayTime": 20, "executionTime": 900}
        if self.runpod_status == "COMPLETED":
            delivery["output"] = {"images": [self.svc.put_result(job_id)]}
        else:
            delivery["error"] = "CUDA out of memory"
        hook = await self.svc.app.handle(Request("POST", "/api/runpod/webhook",
                                                 f"job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}",
                                                 {}, json.dumps(delivery).encode()))
        assert hook.status == 200, hook.body
        raise RunPodUnavailable("RunPod at https://api.runpod.ai is unreachable: timed out")

    async def status(self, runpod_job_id):
        return await self.inner.status(runpod_job_id)


@pytest.mark.parametrize(("runpod_status", "status", "error"), [("COMPLETED", "completed", None),
                                                                ("FAILED", "failed", "CUDA out of memory")])
def test_a_run_answer_lost_after_the_webhook_arrived_is_not_reported_as_a_failed_submission(
        svc, log_lines, runpod_status, status, error):
    """The webhook proves RunPod has the job: telling the client it is 'marked failed, submit it again'
    would have them pay for the same image twice, and hide the job's real outcome."""
    svc.app.runpod = _AnswerLostAfterTheWebhook(svc, runpod_status)
    got, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}})
    assert got == 202, body
    assert body["status"] == status and len(body["job_id"]) == 32
    row = svc.job(body["job_id"])
    assert row["status"] == status and row["runpod_job_id"].endswith("-u1")
    assert row["error"] == error  # RunPod's own reason, not "RunPod could not be reached"
    # the create's own line: a warning, not the job.submit_failed error an operator is paged on
    [line] = [json.loads(line) for line in log_lines if json.loads(line)["http"]["path"] == "/api/queue/create"]
    assert (line["event"], line["level"], line["runpod_job_id"]) == ("job.submit_answer_lost", "warning",
                                                                     row["runpod_job_id"])


class _AnswerLost:
    """RunPod takes the job, but /run's answer never reaches us (the call times out)."""

    def __init__(self, svc):
        self.inner = svc.app.runpod
        self.accepted = []

    async def run(self, body):
        from service.runpod import RunPodUnavailable

        self.accepted.append((await self.inner.run(body))["id"])
        raise RunPodUnavailable("RunPod at https://api.runpod.ai is unreachable: timed out")

    async def status(self, runpod_job_id):
        return await self.inner.status(runpod_job_id)


def test_runpods_own_outcome_replaces_the_guessed_failure_of_a_submission_whose_answer_was_lost(svc):
    """After a /run timeout the job is marked failed as a guess ("RunPod could not be reached"). When
    RunPod's webhook then shows it ran the job, its outcome and RunPod id must be recorded: else the
    job keeps a false reason, its metrics miss the run, and recover refuses it as never submitted."""
    lost = _AnswerLost(svc)
    svc.app.runpod = lost
    got, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}})
    assert got == 503 and body["error"]["code"] == "runpod_unavailable"
    job_id = body["error"]["job_id"]
    assert svc.job(job_id)["status"] == "failed" and svc.job(job_id)["runpod_job_id"] is None
    [rid] = lost.accepted
    delivery = {"id": rid, "status": "FAILED", "delayTime": 40, "executionTime": 700, "error": "CUDA out of memory"}
    assert svc.deliver(job_id, delivery)[1] == {"applied": True, "reason": "applied", "status": "failed"}
    row = svc.job(job_id)
    assert row["runpod_job_id"] == rid and row["error"] == "CUDA out of memory"
    [metric] = _metrics(svc, job_id)
    assert metric["status"] == "failed" and metric["runpod_run_duration_ms"] == 700
    assert svc.deliver(job_id, delivery)[1]["reason"] == "duplicate"
    svc.fake.set_status(rid, delivery)
    status, body, _ = svc.call("POST", f"/api/admin/recover/{job_id}")  # now recoverable: one status call
    assert status == 200 and body["reason"] == "duplicate" and svc.fake.status_calls == [rid]


def _runpod_webhook_body(svc, job_id, run_body, images):
    """What RunPod POSTs for a finished job: its status fields, plus the job's `input` and `webhook` echoed."""
    return {"id": svc.runpod_id(job_id), "status": "COMPLETED", "delayTime": 812, "executionTime": 4210,
            "input": run_body["input"], "webhook": run_body["webhook"],
            "output": {"images": images, "timings": {"queue_ms": 3, "prompt_ms": 4100, "upload_ms": 90},
                       "workflow_version": "sdxl-txt2img@1.0.0", "gpu_type": "NVIDIA GeForce RTX 4090",
                       "worker_image_tag": "local/worker@sha256:" + "b" * 64}}


def test_a_webhook_larger_than_the_client_body_limit_is_applied_not_refused(svc, log_lines):
    """RunPod's webhook echoes the job's input beside the output: sized on the client's body limit (the
    spec allows 1 KiB), every finished job's webhook was refused with 413 and its outcome lost."""
    from service_testkit import make_config

    from service.app import create_app

    config = make_config(max_body_bytes=1024, runpod_endpoint_base=svc.fake.base)
    svc.app = create_app(config, svc.db, svc.app.store, svc.app.runpod, log_sink=log_lines.sink,
                         clock=lambda: svc.clock[0])
    job = svc.create(prompt="a lighthouse on a cliff at dusk, volumetric light, " * 12)
    images = [svc.put_result(job["job_id"], f"{i}.png") for i in range(4)]
    payload = _runpod_webhook_body(svc, job["job_id"], svc.fake.runs[-1], images)
    assert len(json.dumps(payload)) > 2 * 1024
    status, body, _ = svc.deliver(job["job_id"], payload)
    assert (status, body) == (200, {"applied": True, "reason": "applied", "status": "completed"})
    assert svc.job(job["job_id"])["status"] == "completed"
    status, body, _ = svc.call("POST", "/api/queue/create", raw=b" " * 1025)  # the client's limit stands
    assert status == 413 and body["error"]["code"] == "body_too_large"
    other = svc.create()
    status, body, _ = svc.deliver(other["job_id"], {**payload, "error": "x" * (2 << 20)})  # past any webhook's size
    assert status == 413 and svc.job(other["job_id"])["status"] == "queued"
    refused = json.loads(log_lines[-1])  # an outcome lost: the operator is told which job to recover
    assert (refused["level"], refused["event"], refused["job_id"]) == ("error", "webhook.body_too_large",
                                                                       other["job_id"])
