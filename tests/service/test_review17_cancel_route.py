"""`POST /api/cancel/<job_id>`: a client stops a job it no longer wants. One RunPod /cancel call, applied
through the same transitions as a webhook (`source: cancel`); an ended job is answered as it is; a job
without a RunPod id yet is a 409; RunPod's trouble changes nothing. Real SQLite, moto S3, a fake RunPod
data plane that also serves /cancel."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fake_runpod_plane import FakeRunPod
from service_testkit import (
    API_TOKEN,
    BUCKET,
    RUNPOD_KEY,
    S3_KEY_ID,
    S3_SECRET,
    WEBHOOK_SECRET,
    LosesTheRunPodIdWrite,
    make_config,
)

from service.app import create_app
from service.http import Request
from service.s3_store import S3ResultStore
from service.signing import webhook_signature
from service.sqlite_database import SqliteDatabase

CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}


class CancellingRunPod(FakeRunPod):
    """The fake data plane, plus `POST /cancel/<id>`: by default RunPod's documented answer `{"id", "status":
    "CANCELLED"}` for a job it knows (the one it had ended with for an ended one), 404 for one it does not."""

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.cancel_calls: list[str] = []
        self.cancel_mode = "answer"  # answer | refuse | error | busy | garbage | echo
        self.cancel_answer: dict[str, Any] | None = None  # replaces the default answer
        self.on_cancel: Any = None  # called with the RunPod id before answering (a webhook racing the cancel)

    def _handler(self) -> Any:
        base = super()._handler()
        fake = self

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:
                prefix = f"/v2/{fake.endpoint_id}/cancel/"
                if not self.path.startswith(prefix):
                    return super().do_POST()
                self.rfile.read(int(self.headers.get("content-length") or 0))
                if not self._authorized():
                    return None
                rid = self.path[len(prefix) :]
                with fake._lock:
                    fake.cancel_calls.append(rid)
                    known = fake.jobs.get(rid)
                if fake.on_cancel is not None:
                    fake.on_cancel(rid)
                mode = fake.cancel_mode
                if mode == "refuse":
                    return self._reply(400, {"error": "job cannot be cancelled"})
                if mode == "error":
                    return self._reply(500, {"error": "internal error"})
                if mode == "busy":
                    return self._reply(429, {"error": "rate limited"})
                if mode == "garbage":
                    return self._reply(200, None, raw=b"<html>gateway</html>")
                if mode == "echo":
                    return self._reply(401, {"error": f"bad key {self.headers.get('authorization')}"})
                if fake.cancel_answer is not None:
                    return self._reply(200, fake.cancel_answer)
                if known is None:
                    return self._reply(404, {"error": "request does not exist"})
                ended = known["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
                answer = {"id": rid, "status": known["status"] if ended else "CANCELLED"}
                fake.set_status(rid, {**known, **answer})
                return self._reply(200, answer)

        return Handler


@pytest.fixture
def fake_runpod():  # replaces the kit's: the same plane, with /cancel
    fake = CancellingRunPod(RUNPOD_KEY).start()
    yield fake
    fake.stop()


def _cancel(svc, job_id: str, token: str | None = API_TOKEN, method: str = "POST"):
    return svc.call(method, f"/api/cancel/{job_id}", token=token)


def _events(log_lines) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_lines]


def _unchanged(svc, job_id: str, before: dict[str, Any]) -> None:
    assert svc.job(job_id) == before
    assert svc.rows("SELECT * FROM job_metrics WHERE job_id = ?", (job_id,)) == []
    assert svc.rows("SELECT * FROM webhook_deliveries WHERE job_id = ?", (job_id,)) == []


def test_a_queued_job_is_cancelled_once_and_stays_cancelled(svc, log_lines):
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    svc.clock[0] += 4
    status, body, _ = _cancel(svc, job_id)
    assert status == 200, body
    assert body == {
        "job_id": job_id,
        "cancelled": True,
        "applied": True,
        "reason": "applied",
        "status": "cancelled",
        "runpod_status": "CANCELLED",
        "message": f"job {job_id} is cancelled: RunPod stopped it",
    }
    assert svc.fake.cancel_calls == [rid]
    job = svc.job(job_id)
    assert (job["status"], job["error"], job["results_json"]) == (
        "cancelled",
        "RunPod reported CANCELLED: the job was cancelled before it finished",
        None,
    )
    [metrics] = svc.rows("SELECT * FROM job_metrics")
    assert (metrics["status"], metrics["images"], metrics["e2e_ms"]) == ("cancelled", 0, 4000)
    [delivery] = svc.rows("SELECT * FROM webhook_deliveries")
    assert (delivery["source"], delivery["runpod_status"], delivery["outcome"]) == (
        "cancel",
        "CANCELLED",
        "applied",
    )
    [finished] = [e for e in _events(log_lines) if e["event"] == "job.finished"]
    assert (finished["level"], finished["status"], finished["data"]["source"]) == (
        "warning",
        "cancelled",
        "cancel",
    )
    # the status a client reads
    assert svc.call("GET", f"/api/status/{job_id}")[1]["status"] == "cancelled"

    # cancelled again: idempotent, RunPod is not called again, nothing changes
    before = svc.job(job_id)
    log_lines.clear()
    status, body, _ = _cancel(svc, job_id)
    assert (
        status,
        body["cancelled"],
        body["applied"],
        body["reason"],
        body["status"],
        body["runpod_status"],
    ) == (200, False, False, "already_ended", "cancelled", None), body
    assert "already ended (cancelled)" in body["message"]
    assert svc.fake.cancel_calls == [rid] and svc.job(job_id) == before
    [line] = _events(log_lines)
    assert (line["event"], line["level"], line["reason"], line["job_id"]) == (
        "job.cancel_skipped",
        "info",
        "already_ended",
        job_id,
    )

    # a COMPLETED webhook that comes after the cancel: the first terminal outcome stands, one metrics row
    late = svc.completed(job_id, [svc.put_result(job_id)])
    status, body, _ = svc.deliver(job_id, late)
    assert (status, body["applied"], body["reason"], body["status"]) == (
        200,
        False,
        "terminal_conflict",
        "cancelled",
    )
    assert svc.job(job_id) == before and svc.rows("SELECT * FROM job_metrics") == [metrics]
    # and the same webhook again is a duplicate
    assert svc.deliver(job_id, late)[1]["reason"] == "duplicate"

    # a cancelled job counts, and is no error
    report = svc.call("GET", "/api/metrics")[1]["overall"]
    assert (report["count"], report["completed"], report["errors"], report["error_rate"]) == (1, 0, 0, 0)


def test_an_ended_job_is_answered_as_it_is_without_calling_runpod(svc, log_lines):
    job_id = svc.create()["job_id"]
    assert svc.deliver(job_id, svc.completed(job_id, [svc.put_result(job_id)]))[1]["reason"] == "applied"
    before, metrics = svc.job(job_id), svc.rows("SELECT * FROM job_metrics")
    status, body, _ = _cancel(svc, job_id)
    assert (status, body["cancelled"], body["reason"], body["status"]) == (
        200,
        False,
        "already_ended",
        "completed",
    )
    assert svc.fake.cancel_calls == [] and svc.job(job_id) == before
    assert svc.rows("SELECT * FROM job_metrics") == metrics


def test_a_job_failed_at_submission_is_ended_too(svc):
    svc.fake.run_mode = "refuse"
    status, body, _ = svc.call("POST", "/api/queue/create", CREATE)
    assert status == 502, body
    status, body, _ = _cancel(svc, body["error"]["job_id"])
    assert (status, body["cancelled"], body["reason"], body["status"]) == (
        200,
        False,
        "already_ended",
        "failed",
    )
    assert svc.fake.cancel_calls == []


def test_a_job_without_its_runpod_id_yet_is_a_409_to_retry_shortly_and_nothing_changes(svc, log_lines):
    svc.app.db = LosesTheRunPodIdWrite(svc.db)  # as if /run had not answered yet: no RunPod id recorded
    status, body, _ = svc.call("POST", "/api/queue/create", CREATE)
    svc.app.db = svc.db
    job_id = body["job_id"]
    before = svc.job(job_id)
    assert before["runpod_job_id"] is None
    status, body, headers = _cancel(svc, job_id)
    assert (status, body["error"]["code"], headers.get("retry-after")) == (
        409,
        "submission_in_flight",
        "2",
    ), body
    assert "cancel it again in a few seconds" in body["error"]["message"]
    _unchanged(svc, job_id, before)
    # long past its /run timeout, no answer is coming: retrying would not help, and the 409 says what would
    svc.clock[0] += 3600
    status, body, headers = _cancel(svc, job_id)
    assert (status, body["error"]["code"], headers.get("retry-after")) == (409, "not_submitted", None), body
    assert "job.runpod_id_unrecorded" in body["error"]["message"]
    _unchanged(svc, job_id, before)
    assert svc.fake.cancel_calls == []
    failed = [e for e in _events(log_lines) if e["event"] == "job.cancel_failed"]
    assert [(e["level"], e["reason"]) for e in failed] == [
        ("warning", "submission_in_flight"),
        ("warning", "not_submitted"),
    ]


@pytest.mark.parametrize(
    ("mode", "http", "code"),
    [
        ("refuse", 502, "runpod_refused"),
        ("error", 503, "runpod_unavailable"),
        ("busy", 503, "runpod_unavailable"),
        ("garbage", 503, "runpod_unavailable"),
        ("echo", 502, "runpod_refused"),
    ],
)
def test_runpod_trouble_answers_an_error_and_changes_nothing(svc, log_lines, mode, http, code):
    job_id = svc.create()["job_id"]
    before = svc.job(job_id)
    svc.fake.cancel_mode = mode
    status, body, headers = _cancel(svc, job_id)
    assert (status, body["error"]["code"]) == (http, code), body
    assert f"job {job_id} is unchanged" in body["error"]["message"]
    assert RUNPOD_KEY not in json.dumps(body)
    if http == 503:
        assert headers.get("retry-after") == "5"
    _unchanged(svc, job_id, before)
    [line] = [e for e in _events(log_lines) if e["event"] == "job.cancel_failed"]
    assert (line["level"], line["reason"], line["runpod_job_id"]) == ("error", code, before["runpod_job_id"])
    # once RunPod answers again, the same cancel goes through
    svc.fake.cancel_mode = "answer"
    assert _cancel(svc, job_id)[1]["cancelled"] is True


def test_runpod_out_of_reach_answers_503_and_changes_nothing(svc):
    job_id = svc.create()["job_id"]
    before = svc.job(job_id)
    svc.app.runpod.endpoint_base = "http://127.0.0.1:9/v2/ep-test"  # nothing listens on the discard port
    status, body, headers = _cancel(svc, job_id)
    assert (status, body["error"]["code"], headers.get("retry-after")) == (503, "runpod_unavailable", "5"), (
        body
    )
    assert "unreachable" in body["error"]["message"]
    _unchanged(svc, job_id, before)


def test_a_job_runpod_no_longer_knows_is_a_409_that_points_to_recovery(svc):
    job_id = svc.create()["job_id"]
    before = svc.job(job_id)
    svc.fake.jobs.clear()  # RunPod deleted it (its ttl)
    status, body, _ = _cancel(svc, job_id)
    assert (status, body["error"]["code"]) == (409, "unknown_runpod_job"), body
    assert "recover" in body["error"]["message"]
    _unchanged(svc, job_id, before)


@pytest.mark.parametrize("answer", [{"status": "IN_PROGRESS"}, {"status": "IN_QUEUE"}])
def test_an_answer_that_the_job_still_runs_is_a_502_and_changes_nothing(svc, answer):
    job_id = svc.create()["job_id"]
    before = svc.job(job_id)
    svc.fake.cancel_answer = {"id": before["runpod_job_id"], **answer}
    status, body, _ = _cancel(svc, job_id)
    assert (status, body["error"]["code"]) == (502, "runpod_not_cancelled"), body
    _unchanged(svc, job_id, before)


@pytest.mark.parametrize("answer", [{"status": "ELSEWHERE"}, {"state": "CANCELLED"}])
def test_an_answer_that_is_not_runpods_is_a_502_and_changes_nothing(svc, answer):
    job_id = svc.create()["job_id"]
    before = svc.job(job_id)
    svc.fake.cancel_answer = answer
    status, body, _ = _cancel(svc, job_id)
    assert (status, body["error"]["code"]) == (502, "runpod_bad_answer"), body
    assert "/cancel answer" in body["error"]["message"]
    _unchanged(svc, job_id, before)


@pytest.mark.parametrize("ended", ["COMPLETED", "FAILED"])
def test_runpod_had_already_finished_the_job_its_answer_without_the_outcome_settles_nothing(
    svc, log_lines, ended
):
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    before = svc.job(job_id)
    svc.fake.set_status(rid, {"id": rid, "status": ended})  # RunPod answers /cancel with the status alone
    status, body, _ = _cancel(svc, job_id)
    assert (
        status,
        body["cancelled"],
        body["applied"],
        body["reason"],
        body["status"],
        body["runpod_status"],
    ) == (200, False, False, "runpod_already_finished", "queued", ended), body
    assert "its webhook records the outcome" in body["message"]
    _unchanged(svc, job_id, before)
    [line] = [e for e in _events(log_lines) if e["event"] == "job.cancel_skipped"]
    assert (line["reason"], line["data"]["runpod_status"]) == ("runpod_already_finished", ended)
    # the webhook then brings the whole outcome, which a COMPLETED without output would have lost
    webhook = (
        svc.completed(job_id, [svc.put_result(job_id)])
        if ended == "COMPLETED"
        else {
            "id": rid,
            "status": "FAILED",
            "delayTime": 3,
            "executionTime": 400,
            "error": "CUDA out of memory",
        }
    )
    assert svc.deliver(job_id, webhook)[1]["reason"] == "applied"
    job = svc.job(job_id)
    assert job["status"] == ended.lower()
    assert job["error"] == (None if ended == "COMPLETED" else "CUDA out of memory")


def test_runpod_answering_with_the_whole_outcome_settles_the_job_as_runpod_reports_it(svc):
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    svc.fake.cancel_answer = {
        "id": rid,
        "status": "FAILED",
        "delayTime": 3,
        "executionTime": 400,
        "error": "CUDA out of memory",
    }
    status, body, _ = _cancel(svc, job_id)
    assert (
        status,
        body["cancelled"],
        body["applied"],
        body["reason"],
        body["status"],
        body["runpod_status"],
    ) == (200, False, True, "applied", "failed", "FAILED"), body
    assert "had already finished" in body["message"]
    job = svc.job(job_id)
    assert (job["status"], job["error"]) == ("failed", "CUDA out of memory")
    [delivery] = svc.rows("SELECT source FROM webhook_deliveries")
    assert delivery["source"] == "cancel"


def test_a_completed_webhook_that_wins_the_race_stands_and_the_cancel_says_so(
    svc, db_path, moto_endpoint, log_lines
):
    """The COMPLETED webhook is applied (by another request, another Worker isolate) while RunPod's /cancel
    answer is on its way: the first terminal outcome stands, the cancel's is a terminal conflict, one
    metrics row."""
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    webhook = svc.completed(job_id, [svc.put_result(job_id)])
    other = create_app(
        make_config(runpod_endpoint_base=svc.fake.base, db_path=str(db_path), s3_endpoint_url=moto_endpoint),
        SqliteDatabase(db_path),
        S3ResultStore.connect(moto_endpoint, BUCKET, S3_KEY_ID, S3_SECRET),
        svc.app.runpod,
        log_sink=log_lines.sink,
        clock=lambda: svc.clock[0],
    )

    def webhook_first(_rid: str) -> None:
        query = f"job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}"
        response = asyncio.run(
            other.handle(Request("POST", "/api/runpod/webhook", query, {}, json.dumps(webhook).encode()))
        )
        assert response.status == 200

    svc.fake.on_cancel = webhook_first
    svc.fake.cancel_answer = {"id": rid, "status": "CANCELLED"}  # RunPod's word crossed the webhook
    status, body, _ = _cancel(svc, job_id)
    other.db.close()
    assert (status, body["cancelled"], body["applied"], body["reason"], body["status"]) == (
        200,
        False,
        False,
        "terminal_conflict",
        "completed",
    ), body
    assert svc.job(job_id)["status"] == "completed"
    [metrics] = svc.rows("SELECT status FROM job_metrics")
    assert metrics["status"] == "completed"


def test_no_token_or_a_wrong_one_is_401_and_nothing_is_called(svc):
    job_id = svc.create()["job_id"]
    before = svc.job(job_id)
    for token in (None, "wrong-token", API_TOKEN + "x"):
        status, body, headers = _cancel(svc, job_id, token=token)
        assert (status, body["error"]["code"], headers.get("www-authenticate")) == (
            401,
            "unauthorized",
            "Bearer",
        )
    assert svc.fake.cancel_calls == [] and svc.job(job_id) == before


def test_an_unknown_job_is_404(svc):
    status, body, _ = _cancel(svc, "0" * 32)
    assert (status, body["error"]["code"]) == (404, "unknown_job"), body
    assert svc.fake.cancel_calls == []


def test_another_method_is_405_naming_post(svc):
    job_id = svc.create()["job_id"]
    for method in ("GET", "PUT", "DELETE"):
        status, body, headers = _cancel(svc, job_id, method=method)
        assert (status, body["error"]["code"], headers.get("allow")) == (405, "method_not_allowed", "POST"), (
            body
        )
    assert svc.fake.cancel_calls == [] and svc.job(job_id)["status"] == "queued"


def test_hostile_job_ids_reach_neither_runpod_nor_another_job(svc):
    job_id = svc.create()["job_id"]
    before = svc.job(job_id)
    rid = before["runpod_job_id"]
    hostile = {
        f"..%2f..%2fadmin%2frecover%2f{job_id}": "unknown_job",  # encoded slashes stay in the one segment
        f"%2e%2e%2F{job_id}": "unknown_job",
        "%61" * 32: "unknown_job",  # a job id's characters, percent-encoded
        job_id.upper(): "unknown_job",
        f"{job_id}%0A": "unknown_job",
        f"{job_id}%00": "unknown_job",
        rid: "unknown_job",  # RunPod's id is not ours
        "a" * 201: "not_found",  # over the route's 200 characters
        "a" * 5000: "not_found",
    }
    for raw, code in hostile.items():
        status, body, _ = svc.call("POST", f"/api/cancel/{raw}")
        assert (status, body["error"]["code"]) == (404, code), (raw, body)
    # dot segments resolve before routing: these name other routes, never this job's cancel
    assert svc.call("POST", f"/api/cancel/../status/{job_id}")[0] == 405
    assert svc.call("POST", f"/api/cancel/%2e%2e/status/{job_id}")[0] == 405
    assert svc.call("POST", f"/api/x/../cancel/{job_id}/..")[0] == 404
    assert svc.fake.cancel_calls == [] and svc.job(job_id) == before


def test_a_cancelled_webhook_after_the_cancel_changes_nothing(svc):
    """RunPod may send a webhook for the job it cancelled (unverified, VENDOR_FACTS): the same outcome
    again."""
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    assert _cancel(svc, job_id)[1]["cancelled"] is True
    before, metrics = svc.job(job_id), svc.rows("SELECT * FROM job_metrics")
    status, body, _ = svc.deliver(
        job_id, {"id": rid, "status": "CANCELLED", "delayTime": 300, "executionTime": 2500}
    )
    assert (status, body["applied"], body["status"]) == (200, False, "cancelled"), body
    assert body["reason"] in ("no_change", "terminal_conflict")
    assert svc.job(job_id) == before and svc.rows("SELECT * FROM job_metrics") == metrics
    # a progress report that comes late is out of order
    assert svc.deliver(job_id, {"id": rid, "status": "IN_PROGRESS"})[1]["reason"] == "out_of_order"
    assert svc.job(job_id) == before
