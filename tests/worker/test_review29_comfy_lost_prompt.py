"""A prompt ComfyUI no longer knows (it restarted between two polls and came back with an empty queue and history,
or another client deleted the prompt from its queue) never gets a history entry. The worker asks ComfyUI's queue
while it waits, and fails the job at once with what happened and what to do, instead of polling an entry that
will never come until COMFY_JOB_TIMEOUT_S runs out (the GPU billed all along) and blaming a slow render. A prompt
that is still queued behind another, or running, is waited for as before."""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from worker_harness import WORKER_DIR, ComfyProxy, job, send

from goldgate.local.comfyui import ComfyUIEmulator
from images.worker.comfy_client import ComfyClient
from images.worker.handler import run_job
from images.worker.job_input import parse_job_input
from images.worker.workflows import load_workflows


class RestartingComfy(ComfyProxy):
    """Forwards to `first` until it has answered the job's POST /prompt, then to `restarted`: a ComfyUI that
    restarted right after it accepted the prompt (its queue and history empty)."""

    def __init__(self, first: str, restarted: str) -> None:
        super().__init__(first)
        self.restarted = restarted

    def answer(self, handler: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str) -> None:
        send(handler, status, data, ctype)
        if handler.command == "POST" and handler.path == "/prompt":
            self.upstream = self.restarted


def test_a_prompt_comfyui_lost_when_it_restarted_fails_the_job_at_once(
        models_dir: Path, comfy_factory: Callable[..., ComfyUIEmulator], runtime_factory: Callable[..., Any]) -> None:
    first = comfy_factory(models_dir, render_delay_s=600)
    restarted = comfy_factory(models_dir)
    assert first.wait_listening(10) and restarted.wait_listening(10)
    stand_in = RestartingComfy(first.url, restarted.url)
    try:
        out = run_job(job(), runtime_factory(stand_in.url, models_dir, COMFY_JOB_TIMEOUT_S="30"))
    finally:
        stand_in.stop()
    error = out["error"]
    assert error.startswith("ComfyUI lost prompt "), out
    assert "neither queued, running nor in its history" in error and "resubmit" in error, out
    assert "did not finish" not in error, out
    # The worker itself can render again: RunPod keeps it.
    assert "refresh_worker" not in out, out


def test_a_prompt_queued_behind_another_clients_is_waited_for(
        models_dir: Path, comfy_factory: Callable[..., ComfyUIEmulator], runtime_factory: Callable[..., Any]) -> None:
    comfy = comfy_factory(models_dir, render_delay_s=2.5)
    assert comfy.wait_listening(10)
    # Another client's prompt runs first; the job's waits in the queue behind it for longer than one check of it.
    other = parse_job_input(job(job_id="other-client")["input"], load_workflows(WORKER_DIR / "workflows")).graph
    ComfyClient(comfy.url).queue_prompt(other, client_id="another-client")
    out = run_job(job(), runtime_factory(comfy.url, models_dir, COMFY_JOB_TIMEOUT_S="60"))
    assert "error" not in out, out
    assert len(out["images"]) == 1, out
