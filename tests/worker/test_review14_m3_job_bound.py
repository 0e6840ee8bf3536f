"""COMFY_JOB_TIMEOUT_S bounds the whole job from its start (docs/INTERFACES.md): what a cold start used is gone from
the prompt's wait too, so the worker's own clear error (and its withdrawal of the prompt) comes before RunPod's
executionTimeout cuts the job off without a word."""

from __future__ import annotations

import re

from worker_harness import job

from images.worker.handler import run_job

STARTUP_S, JOB_BOUND_S = 1.5, 5.0


def test_the_prompts_wait_gets_only_what_the_cold_start_left_of_the_job_bound(models_dir, comfy_factory,
                                                                              runtime_factory, logs):
    comfy = comfy_factory(models_dir, startup_delay_s=STARTUP_S, render_delay_s=120)
    out = run_job(job(), runtime_factory(comfy.url, models_dir, COMFY_READY_TIMEOUT_S="30",
                                         COMFY_JOB_TIMEOUT_S=str(JOB_BOUND_S)))
    stated = re.search(r"did not finish prompt \S+ within ([0-9.]+) s \(what was left of the job's "
                       r"COMFY_JOB_TIMEOUT_S\)", out.get("error", ""))
    assert stated, out
    (ready,) = [line for line in logs.lines() if line["event"] == "comfy_ready"]
    cold_start_s = ready["duration_ms"] / 1000
    assert cold_start_s >= 0.5, ready  # the job did wait for ComfyUI to come up
    # The prompt was given no more than what the cold start left of the job's bound (the message rounds to 0.1 s).
    assert float(stated.group(1)) <= JOB_BOUND_S - cold_start_s + 0.05, (cold_start_s, out["error"])
