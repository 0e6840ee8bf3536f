"""How `goldgate cancel --all-queued --yes` paces and reads its cancels: at most 80 sends in any 10 s (RunPod's
/cancel allows 100 per 10 s per endpoint, and the clients' own cancels share it), a slot freed exactly when its
send leaves the window; a 403 (a proxy or Cloudflare Access refusing the token) stops the run as a 401 does, rather
than sending thousands of cancels refused the same way; a 429 from a proxy in front of the API is trouble that
passes, tried again after its Retry-After, not a failure to retry by hand; a retry waits the answer's Retry-After,
at most a minute (an hour's Retry-After must not hold the run for hours), else 1, 2, 4 s. Only an answer the
service gave without calling RunPod (`already_ended`) gives its place in the window back: `runpod_already_finished`
was RunPod's own answer to a /cancel call, which its limit counted; a slot whose send took longer than the window
has nothing to give back. A sender waiting for a slot when the run stops sends nothing more."""

from __future__ import annotations

import threading
import types
from typing import Any, ClassVar

import httpx
import pytest
from serving import JsonHandler, serving

from goldgate.ops import bulk_cancel
from goldgate.ops.bulk_cancel import SelectedJob

FIRST, SECOND = "1" * 32, "2" * 32


def _job(job_id: str) -> SelectedJob:
    return SelectedJob(job_id, "sdxl-txt2img", "queued", "2026-12-01T03:00:00.000Z")


def test_the_default_pace_sends_at_most_80_in_any_10_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_000.0]
    monkeypatch.setattr(bulk_cancel, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    pace = bulk_cancel.Pace()
    window = bulk_cancel._Window(pace.per_window, pace.window_s)
    stopped = threading.Event()
    stopped.set()  # a take that would have to wait gives up at once (None) instead
    assert all(window.take(stopped) is not None for _ in range(80))
    assert window.take(stopped) is None  # the 81st within the 10 s
    clock[0] += 9.999
    assert window.take(stopped) is None
    clock[0] = 1_010.0  # the first 80 leave the window together
    assert [window.take(stopped) for _ in range(81)][-2:] == [1_010.0, None]


def _api(answers: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]], seen: list[str]) -> type[JsonHandler]:
    lock = threading.Lock()

    class Api(JsonHandler):
        def do_POST(self) -> None:
            job_id = self.path.rsplit("/", 1)[-1]
            with lock:
                seen.append(job_id)
                queue = answers[job_id]
                status, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
            data = httpx.Response(200, json=body).content
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Api


def _cancel_all(answers: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]], seen: list[str]) -> Any:
    with serving(_api(answers, seen)) as base, httpx.Client(base_url=base, timeout=10) as client:
        return bulk_cancel.cancel_all([_job(j) for j in answers], bulk_cancel.http_sender(client),
                                      lambda job_id: f"goldgate cancel {job_id} --stack prod",
                                      pace=bulk_cancel.Pace(concurrency=1))


def test_a_403_stops_the_run_as_a_refused_token_does() -> None:
    forbidden = (403, {"error": {"code": "forbidden", "message": "Access denied"}}, {})
    seen: list[str] = []
    jobs = [f"{n:032x}" for n in range(1, 6)]
    results, interrupted, stopped = _cancel_all({j: [forbidden] for j in jobs}, seen)
    assert seen == jobs[:1]  # one refusal, not one a job
    assert interrupted is None and stopped is not None and "refused the token" in stopped, stopped
    assert [r.outcome for r in results] == ["failed"] + ["not_sent"] * 4
    assert [r.retry for r in results] == [f"goldgate cancel {j} --stack prod" for j in jobs]  # each its line


@pytest.mark.parametrize("retry_after", ["0", "Tue, 01 Dec 2026 03:00:00 GMT", "Tue, 01 Dec 2026 03:00:00 -0000"])
def test_a_proxys_429_is_tried_again_after_its_retry_after(retry_after: str) -> None:
    # an HTTP date past (RFC 9110 gives GMT; an RFC 2822 date may say -0000, which Python reads without a zone)
    limited = (429, {"error": {"code": "too_many_requests", "message": "slow down"}}, {"retry-after": retry_after})
    cancelled = (200, {"job_id": FIRST, "cancelled": True, "status": "cancelled", "reason": "applied",
                       "message": "cancelled"}, {})
    seen: list[str] = []
    results, interrupted, stopped = _cancel_all({FIRST: [limited, cancelled]}, seen)
    assert (interrupted, stopped) == (None, None)
    (result,) = results
    assert (result.outcome, result.attempts, result.retry) == ("cancelled", 2, None), result
    assert seen == [FIRST, FIRST]


class _Waits(threading.Event):
    """The run's stop event, recording each wait it is asked for and answering at once (not stopped): what the run
    would have waited, without waiting it."""

    asked: ClassVar[list[float]] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None:
            _Waits.asked.append(timeout)
        return self.is_set()


def test_a_retry_waits_its_retry_after_at_most_a_minute_else_1_2_4_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_cancel, "threading", types.SimpleNamespace(Event=_Waits, Lock=threading.Lock,
                                                                        Thread=threading.Thread))
    monkeypatch.setattr(_Waits, "asked", [])
    unavailable = {"error": {"code": "runpod_unavailable", "message": "RunPod answered HTTP 429"}}
    seen: list[str] = []
    results, interrupted, stopped = _cancel_all({FIRST: [(503, unavailable, {"retry-after": "3600"})],
                                                 SECOND: [(503, unavailable, {})]}, seen)
    assert (interrupted, stopped) == (None, None)
    assert [(r.outcome, r.attempts) for r in results] == [("failed", 4), ("failed", 4)]
    assert results[0].message == "503 runpod_unavailable: RunPod answered HTTP 429 (tried 4 times)"
    assert _Waits.asked == [60.0, 60.0, 60.0, 1.0, 2.0, 4.0]
    assert seen == [FIRST] * 4 + [SECOND] * 4


def test_only_an_answer_given_without_a_runpod_call_gives_its_place_back(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]

    class Clocked(threading.Event):
        """The run's stop event on a clock of the test's: a wait moves the clock on by its timeout, at once."""

        def wait(self, timeout: float | None = None) -> bool:
            if timeout is not None and not self.is_set():
                clock[0] += timeout
            return self.is_set()

    monkeypatch.setattr(bulk_cancel, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(bulk_cancel, "threading", types.SimpleNamespace(Event=Clocked, Lock=threading.Lock,
                                                                        Thread=threading.Thread))
    pace = bulk_cancel.Pace(concurrency=1, per_window=2, window_s=10.0)

    def sent_at(reason: str) -> list[float]:
        clock[0], moments = 0.0, []

        def send(job_id: str) -> bulk_cancel.Answer:
            moments.append(clock[0])
            return bulk_cancel.Answer("ended", "completed", reason, "it had ended")

        results, _, _ = bulk_cancel.cancel_all([_job(f"{n:032x}") for n in range(4)], send, lambda j: j, pace=pace)
        assert [r.outcome for r in results] == ["ended"] * 4
        return moments

    assert sent_at("already_ended") == [0.0, 0.0, 0.0, 0.0]  # no RunPod call: no place taken
    assert sent_at("runpod_already_finished") == [0.0, 0.0, 10.0, 10.0]  # RunPod was called: 2 a window

    # a send answered after its slot left the window, which another sender has taken meanwhile
    clock[0], second_sent = 0.0, threading.Event()

    def slow(job_id: str) -> bulk_cancel.Answer:
        if job_id == FIRST:
            assert second_sent.wait(30), "the second send never came"
        else:
            second_sent.set()
        return bulk_cancel.Answer("ended", "completed", "already_ended", "it had ended")

    results, _, _ = bulk_cancel.cancel_all([_job(FIRST), _job(SECOND)], slow, lambda j: j,
                                           pace=bulk_cancel.Pace(concurrency=2, per_window=1, window_s=10.0))
    assert [r.outcome for r in results] == ["ended", "ended"]


def test_a_sender_waiting_for_a_slot_when_the_run_stops_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    waiting = threading.Event()

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waiting.set()  # a sender waits for a slot (the only wait of this run)
            return super().wait(timeout)

    monkeypatch.setattr(bulk_cancel, "threading", types.SimpleNamespace(Event=Stop, Lock=threading.Lock,
                                                                        Thread=threading.Thread))
    sent: list[str] = []

    def send(job_id: str) -> bulk_cancel.Answer:
        sent.append(job_id)
        assert waiting.wait(30), "the second sender never waited for a slot"
        return bulk_cancel.Answer("fatal", None, "unauthorized", "401 unauthorized: the stack's API refused the token")

    jobs = [_job(FIRST), _job(SECOND)]
    results, interrupted, stopped = bulk_cancel.cancel_all(
        jobs, send, lambda j: j, pace=bulk_cancel.Pace(concurrency=2, per_window=1, window_s=600.0))
    assert len(sent) == 1 and stopped is not None and interrupted is None
    assert sorted(r.outcome for r in results) == ["failed", "not_sent"]
    (waited,) = [r for r in results if r.outcome == "not_sent"]
    assert (waited.attempts, waited.retry) == (0, waited.job_id)  # the line that sends it
