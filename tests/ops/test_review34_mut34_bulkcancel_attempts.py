"""A job whose cancel was answered with trouble that passes (a 503) and whose retry was still waiting for a place in
the /cancel window when the run stopped (a refused token, or Ctrl-C) was sent once: its result says so. It said
"tried 2 times" and counted 2 attempts, a send that never happened, so an operator reading why a job failed would
think the API refused it twice."""

from __future__ import annotations

import threading
import types

import pytest

from goldgate.ops import bulk_cancel
from goldgate.ops.bulk_cancel import SelectedJob

RETRIED, REFUSED = "1" * 32, "2" * 32


def test_a_retry_stopped_while_waiting_for_a_slot_counts_the_one_send(monkeypatch: pytest.MonkeyPatch) -> None:
    retry_waits, refused_sending = threading.Event(), threading.Event()

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            if timeout is not None and timeout > 1:  # a sender waits for a place in the window (600 s)
                retry_waits.set()
            return super().wait(timeout)

    monkeypatch.setattr(bulk_cancel, "threading", types.SimpleNamespace(Event=Stop, Lock=threading.Lock,
                                                                        Thread=threading.Thread))

    def send(job_id: str) -> bulk_cancel.Answer:
        if job_id == RETRIED:  # answered once both places of the window are taken: its retry has to wait
            assert refused_sending.wait(30), "the other job was never sent"
            return bulk_cancel.Answer("retry", None, "runpod_unavailable", "503 runpod_unavailable: RunPod is busy",
                                      0.0)
        refused_sending.set()
        assert retry_waits.wait(30), "the retry never waited for a place"
        return bulk_cancel.Answer("fatal", None, "unauthorized", "401 unauthorized: the stack's API refused the token")

    jobs = [SelectedJob(j, "sdxl-txt2img", "queued", "2026-12-01T03:00:00.000Z") for j in (RETRIED, REFUSED)]
    results, interrupted, stopped = bulk_cancel.cancel_all(
        jobs, send, lambda job_id: f"goldgate cancel {job_id} --stack prod",
        pace=bulk_cancel.Pace(concurrency=2, per_window=2, window_s=600.0))
    assert interrupted is None and stopped is not None
    retried = results[0]
    assert (retried.outcome, retried.attempts) == ("failed", 1), retried
    assert retried.message == ("503 runpod_unavailable: RunPod is busy (tried once; stopped before trying again)")
    assert retried.retry == f"goldgate cancel {RETRIED} --stack prod"
