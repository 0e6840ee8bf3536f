"""Review 14 (r2): ComfyUI queued a prompt with some outputs that failed validation (it answers 200 with
node_errors and runs the rest); the worker withdraws it and fails the job. When that prompt runs on past its
withdrawal (a node that does not stop), every later job on this worker would queue behind it, as after a lost
POST /prompt answer or a timed-out wait: RunPod must replace the worker (refresh_worker), not hand it more jobs."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
from worker_harness import job

from images.worker import comfy_client, handler
from images.worker.comfy_client import ComfyClient
from images.worker.handler import run_job


def _with_an_invalid_second_output(graph: dict[str, Any]) -> dict[str, Any]:
    """`graph` plus a second SaveImage fed by a latent ComfyUI refuses (width 8 is below its minimum 16)."""
    graph = dict(graph)
    loader = next(nid for nid, node in graph.items() if node["class_type"] == "CheckpointLoaderSimple")
    graph["913"] = {"class_type": "EmptyLatentImage", "inputs": {"width": 8, "height": 512, "batch_size": 1}}
    graph["912"] = {"class_type": "VAEDecode", "inputs": {"samples": ["913", 0], "vae": [loader, 2]}}
    graph["911"] = {"class_type": "SaveImage", "inputs": {"images": ["912", 0], "filename_prefix": "second"}}
    return graph


@pytest.fixture
def partial_prompts(monkeypatch):
    saved_apart = handler._saved_apart
    monkeypatch.setattr(handler, "_saved_apart",
                        lambda graph, run_id: saved_apart(_with_an_invalid_second_output(graph), run_id))


def _running(base_url: str, prompt_id: str) -> bool:
    with urllib.request.urlopen(base_url + "/queue", timeout=5) as resp:
        return any(item[1] == prompt_id for item in json.loads(resp.read())["queue_running"])


def test_a_partly_valid_prompt_that_does_not_stop_retires_the_worker(partial_prompts, models_dir, comfy_factory,
                                                                     runtime_factory, monkeypatch):
    monkeypatch.setattr(comfy_client, "WITHDRAW_TIMEOUT_S", 0.5)
    withdraw = ComfyClient.withdraw

    def once_running(self: ComfyClient, prompt_id: str) -> bool:
        # The case at hand is a prompt ComfyUI has started (one still pending leaves the queue when deleted).
        deadline = time.monotonic() + 10
        while not _running(self.base_url, prompt_id) and time.monotonic() < deadline:
            time.sleep(0.02)
        return withdraw(self, prompt_id)

    monkeypatch.setattr(ComfyClient, "withdraw", once_running)
    comfy = comfy_factory(models_dir, render_delay_s=120, interrupt_lag_s=3.0)   # runs on 3 s past an interrupt
    assert comfy.wait_listening(10)
    out = run_job(job(), runtime_factory(comfy.url, models_dir))
    assert out.get("refresh_worker") is True, out
    assert "failed validation" in out["error"] and "still running it 0.5 s after the interrupt" in out["error"], out


def test_a_partly_valid_prompt_that_stops_fails_the_job_and_keeps_the_worker(partial_prompts, models_dir,
                                                                              comfy_factory, runtime_factory):
    comfy = comfy_factory(models_dir, render_delay_s=120)   # stops at once when interrupted
    assert comfy.wait_listening(10)
    out = run_job(job(), runtime_factory(comfy.url, models_dir))
    assert "refresh_worker" not in out, out
    assert out["error"].startswith("ComfyUI rejected the prompt: node 913 (EmptyLatentImage)"), out
