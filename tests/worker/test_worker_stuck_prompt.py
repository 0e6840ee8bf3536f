"""A prompt that does not stop when the worker gives up on it holds ComfyUI: every later job on that worker
would queue behind it and fail on its own bound in turn. The job that finds it so asks RunPod to replace the
worker (refresh_worker); a prompt that does stop leaves a worker that can render, which stays."""

from __future__ import annotations

import pytest
from worker_harness import job

from images.worker import comfy_client
from images.worker.handler import run_job


@pytest.mark.parametrize(("interrupt_lag_s", "retire"), [(0.0, False), (3.0, True)],
                         ids=["stops-when-withdrawn", "still-running-after-the-withdrawal"])
def test_a_timed_out_prompt_that_does_not_stop_retires_the_worker(models_dir, comfy_factory, runtime_factory, logs,
                                                                  monkeypatch, interrupt_lag_s, retire):
    # The emulator renders for 120 s and, interrupted, runs on for interrupt_lag_s before it stops; the worker
    # waits WITHDRAW_TIMEOUT_S (shortened here) for ComfyUI's queue to let go of the prompt.
    monkeypatch.setattr(comfy_client, "WITHDRAW_TIMEOUT_S", 0.5)
    comfy = comfy_factory(models_dir, render_delay_s=120, interrupt_lag_s=interrupt_lag_s)
    assert comfy.wait_listening(10)
    out = run_job(job(), runtime_factory(comfy.url, models_dir, COMFY_JOB_TIMEOUT_S="1"))
    assert out["error"].startswith("ComfyUI did not finish prompt"), out
    (failed,) = [line for line in logs.lines() if line["event"] == "job_failed"]
    if retire:
        assert out.get("refresh_worker") is True, out
        assert "still running it 0.5 s after the interrupt" in out["error"]
        assert out["error"].endswith("the worker asks RunPod to replace it")
        assert failed["data"] == {"refresh_worker": True}
    else:
        assert "refresh_worker" not in out, out
        assert "still running" not in out["error"]
        assert "refresh_worker" not in (failed.get("data") or {})

