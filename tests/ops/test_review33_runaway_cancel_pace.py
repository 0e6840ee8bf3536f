"""`goldgate cancel --all-queued --yes` during a runaway, against a stand-in of the stack's API on loopback. Oldest
first, the cancels meet the jobs the workers take from the same end of RunPod's queue: on a local stack of 3 workers
a third of the answers were `already_ended`, which the service gives without a RunPod call, yet each took a place in
the 80-per-10-s /cancel budget, so 816 queued jobs took 101 s to drain. And jobs RunPod no longer knows (its ttl, or a
local stack's `down`) were each told to be cancelled again, which is refused the same way: a recovery settles them."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from serving import JsonHandler, serving

from goldgate.ops import bulk_cancel
from goldgate.ops.bulk_cancel import SelectedJob

STACK = "prod"


def _job(job_id: str) -> SelectedJob:
    return SelectedJob(job_id, "sdxl-txt2img", "queued", "2026-12-01T03:00:00.000Z")


def _api(answers: dict[str, tuple[int, dict[str, Any]]], seen: list[str]) -> type[JsonHandler]:
    lock = threading.Lock()

    class Api(JsonHandler):
        def do_POST(self) -> None:
            job_id = self.path.rsplit("/", 1)[-1]
            with lock:
                seen.append(job_id)
            status, body = answers[job_id]
            data = httpx.Response(200, json=body).content
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Api


def _cancel(answers: dict[str, tuple[int, dict[str, Any]]], pace: bulk_cancel.Pace,
            seen: list[str]) -> tuple[list[bulk_cancel.JobResult], float]:
    with serving(_api(answers, seen)) as base, httpx.Client(base_url=base, timeout=10) as client:
        started = time.monotonic()
        results, interrupted, stopped = bulk_cancel.cancel_all(
            [_job(j) for j in answers], bulk_cancel.http_sender(client),
            lambda job_id: f"goldgate cancel {job_id} --stack {STACK}", pace=pace,
            recover_line=lambda job_id: f"goldgate recover {job_id} --stack {STACK}")
        elapsed = time.monotonic() - started
    assert (interrupted, stopped) == (None, None)
    return results, elapsed


def _ended(job_id: str) -> tuple[int, dict[str, Any]]:
    return 200, {"job_id": job_id, "cancelled": False, "applied": False, "reason": "already_ended",
                 "status": "completed", "runpod_status": None,
                 "message": f"job {job_id} had already ended (completed): nothing was cancelled"}


def _cancelled(job_id: str) -> tuple[int, dict[str, Any]]:
    return 200, {"job_id": job_id, "cancelled": True, "applied": True, "reason": "applied", "status": "cancelled",
                 "runpod_status": "CANCELLED", "message": f"job {job_id} is cancelled: RunPod stopped it"}


def test_jobs_the_workers_finished_first_take_no_place_in_runpods_cancel_budget():
    # the oldest 20 were taken and finished by the workers before their cancels came; the 4 after them still queue
    finished = [f"{n:032x}" for n in range(20)]
    queued = [f"{n:032x}" for n in range(100, 104)]
    answers = {**{j: _ended(j) for j in finished}, **{j: _cancelled(j) for j in queued}}
    seen: list[str] = []
    results, elapsed = _cancel(answers, bulk_cancel.Pace(concurrency=4, per_window=8, window_s=4.0), seen)
    assert [r.outcome for r in results] == ["ended"] * 20 + ["cancelled"] * 4
    assert sorted(seen) == sorted(answers)  # each sent once
    # 4 RunPod calls (and the 4 sends in flight at once) fit one window of 8: no wait (before, 24 sends at 8 a
    # window: 8 s)
    assert elapsed < 3.0, elapsed

    # a cancel RunPod is called for keeps its place: 8 of them at 4 a window wait for the next one
    more = [f"{n:032x}" for n in range(200, 208)]
    _, elapsed = _cancel({j: _cancelled(j) for j in more}, bulk_cancel.Pace(concurrency=4, per_window=4,
                                                                             window_s=2.0), [])
    assert elapsed >= 1.9, elapsed


def test_jobs_runpod_no_longer_knows_are_told_once_with_the_recovery_that_settles_each():
    gone = [f"{n:032x}" for n in range(300, 310)]
    answers: dict[str, tuple[int, dict[str, Any]]] = {
        j: (409, {"error": {"code": "unknown_runpod_job", "message": f"RunPod has no job {j}-u1 any more (its ttl "
                                                                      "expired, or it ended over 30 minutes ago)"}})
        for j in gone}
    other = "f" * 32
    answers[other] = (502, {"error": {"code": "runpod_refused", "message": "RunPod refused the cancel"}})
    results, _ = _cancel(answers, bulk_cancel.Pace(concurrency=4, attempts=1), [])
    by_id = {r.job_id: r for r in results}
    assert {by_id[j].retry for j in gone} == {f"goldgate recover {j} --stack {STACK}" for j in gone}
    assert by_id[other].retry == f"goldgate cancel {other} --stack {STACK}"  # a cancel again may pass

    report = bulk_cancel.report(STACK, "local", bulk_cancel.Selection(bulk_cancel.QUEUED),
                                bulk_cancel.Selected([_job(j) for j in answers], len(answers)), "cmd", results)
    assert (report.failed, bulk_cancel.exit_code(report)) == (11, 1)
    text = bulk_cancel.render_text(report.to_dict())
    lines = text.splitlines()
    assert lines[1] == "  sdxl-txt2img  11"
    # one explanation for the ten, then each one's line; the other failure as before
    assert lines[2] == (f"  FAILED 10 jobs (unknown_runpod_job), e.g. {gone[0]}: 409 unknown_runpod_job: RunPod has "
                        f"no job {gone[0]}-u1 any more (its ttl expired, or it ended over 30 minutes ago)")
    assert lines[3:13] == [f"      goldgate recover {j} --stack {STACK}" for j in gone]
    assert lines[13].startswith("  no cancel can settle these: RunPod has no job under the id recorded")
    assert "run each line above" in lines[13]
    assert lines[14:] == [f"  FAILED {other}: 502 runpod_refused: RunPod refused the cancel (tried once)",
                          f"      goldgate cancel {other} --stack {STACK}"]
    assert text.count("RunPod has no job") == 2  # the example, and the explanation: not ten times
