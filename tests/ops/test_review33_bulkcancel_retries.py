"""How `goldgate cancel --all-queued --yes` sends its cancels, against a stand-in of the stack's API on loopback that
answers each job as scripted: a dropped connection and a 409 `submission_in_flight` are tried again (after a backoff,
or the answer's Retry-After, an HTTP date too), a refusal that no retry changes is named at once with the line to
retry it, a refused token stops the run with the rest not sent, and an id no service made is never put in a URL.
tests/local/test_review33_bulkcancel_local_stack.py runs the command against a real stack."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
from serving import JsonHandler, serving

from goldgate.ops import bulk_cancel
from goldgate.ops.bulk_cancel import SelectedJob

DROPPED, IN_FLIGHT, GONE, ENDED = "a" * 32, "b" * 32, "c" * 32, "d" * 32


def _job(job_id: str) -> SelectedJob:
    return SelectedJob(job_id, "sdxl-txt2img", "queued", "2026-12-01T03:00:00.000Z")


def _script() -> dict[str, list[Any]]:
    """Each job's answers in turn: "drop" closes the connection unanswered; (status, body, headers) otherwise."""
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=4), usegmt=True)
    return {
        DROPPED: ["drop", (200, {"job_id": DROPPED, "cancelled": True, "status": "cancelled", "reason": "applied",
                                 "message": "cancelled"}, {})],
        IN_FLIGHT: [(409, {"error": {"code": "submission_in_flight", "message": "cancel it again shortly"}},
                     {"retry-after": soon}),
                    (200, {"job_id": IN_FLIGHT, "cancelled": False, "status": "completed", "reason": "already_ended",
                           "message": "had already ended"}, {})],
        GONE: [(409, {"error": {"code": "unknown_runpod_job", "message": "RunPod has no job: recover it"}}, {})],
        ENDED: [(200, {"job_id": ENDED, "cancelled": False, "status": "queued", "reason": "runpod_already_finished",
                       "message": "RunPod had already finished it"}, {})],
    }


def _api(script: dict[str, list[Any]], seen: list[tuple[str, float]]) -> type[JsonHandler]:
    lock = threading.Lock()

    class Api(JsonHandler):
        def do_POST(self) -> None:
            job_id = self.path.rsplit("/", 1)[-1]
            with lock:
                seen.append((self.path, time.monotonic()))
                answers = script.get(job_id) or [(401, {"error": {"code": "unauthorized", "message": "no"}}, {})]
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
            if answer == "drop":
                self.close_connection = True
                return
            status, body, headers = answer
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            data = httpx.Response(200, json=body).content
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Api


def _run(jobs: list[str], seen: list[tuple[str, float]]) -> tuple[list[bulk_cancel.JobResult], Any, Any]:
    with serving(_api(_script(), seen)) as base, httpx.Client(base_url=base, timeout=10) as client:
        return bulk_cancel.cancel_all([_job(j) for j in jobs], bulk_cancel.http_sender(client),
                                      lambda job_id: f"goldgate cancel {job_id} --stack prod")


def test_trouble_that_passes_is_tried_again_and_a_final_refusal_is_named_at_once():
    seen: list[tuple[str, float]] = []
    results, interrupted, stopped = _run([DROPPED, IN_FLIGHT, GONE, ENDED], seen)
    assert (interrupted, stopped) == (None, None)
    by_id = {r.job_id: r for r in results}
    assert [r.job_id for r in results] == [DROPPED, IN_FLIGHT, GONE, ENDED]  # the order given
    assert (by_id[DROPPED].outcome, by_id[DROPPED].attempts, by_id[DROPPED].retry) == ("cancelled", 2, None)
    assert (by_id[IN_FLIGHT].outcome, by_id[IN_FLIGHT].status, by_id[IN_FLIGHT].attempts) == ("ended", "completed", 2)
    assert (by_id[ENDED].outcome, by_id[ENDED].attempts) == ("ended", 1)  # RunPod had finished it: no GPU spends
    gone = by_id[GONE]
    assert (gone.outcome, gone.reason, gone.attempts) == ("failed", "unknown_runpod_job", 1)
    assert gone.message == "409 unknown_runpod_job: RunPod has no job: recover it"
    assert gone.retry == f"goldgate cancel {GONE} --stack prod"

    def gap(job_id: str) -> float:
        first, second = [t for path, t in seen if path.endswith(job_id)]
        return second - first

    assert gap(DROPPED) >= 0.9  # the first backoff, a second
    # the Retry-After date, 3 to 4 s ahead when it was answered (to the second): not the 1 s backoff
    assert gap(IN_FLIGHT) >= 2.5


def test_a_refused_token_stops_the_run_and_an_id_no_service_made_is_not_sent():
    seen: list[tuple[str, float]] = []
    odd = "../admin/recover/" + "e" * 32
    jobs = [odd, "f" * 32, *[f"{n:032x}" for n in range(10)]]
    with serving(_api({}, seen)) as base, httpx.Client(base_url=base, timeout=10) as client:
        results, interrupted, stopped = bulk_cancel.cancel_all(
            [_job(j) for j in jobs], bulk_cancel.http_sender(client), lambda job_id: f"goldgate cancel {job_id}",
            pace=bulk_cancel.Pace(concurrency=1))
    assert interrupted is None and stopped is not None and "refused the token" in stopped
    assert (results[0].outcome, results[0].reason) == ("failed", "invalid_job_id")
    assert (results[1].outcome, results[1].reason) == ("failed", "unauthorized")
    assert {r.outcome for r in results[2:]} == {"not_sent"}
    assert [path for path, _ in seen] == ["/api/cancel/" + "f" * 32]
    report = bulk_cancel.report("prod", "local", bulk_cancel.Selection(bulk_cancel.QUEUED),
                                bulk_cancel.Selected([_job(j) for j in jobs], len(jobs)), "cmd", results, None,
                                stopped)
    assert (report.failed, report.not_sent, bulk_cancel.exit_code(report)) == (2, 10, 1)
    assert "  stopped: 401 unauthorized: no: the stack's API refused the token" in bulk_cancel.render_text(
        report.to_dict())


def test_the_commands_default_limit_is_the_selections():
    from goldgate.commands import ops_args

    assert ops_args.DEFAULT_CANCEL_LIMIT == bulk_cancel.DEFAULT_LIMIT == bulk_cancel.Selection(("queued",)).limit
