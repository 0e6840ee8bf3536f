"""ComfyUI answers the worker must read right: an HTTP 500 to a /history poll is a fault that may pass (aiohttp
answers 500 for an exception in a handler), retried like a 502 or 503, not a reason to fail the job; so is an
error answer whose body breaks off."""

from __future__ import annotations

import json
import socket
import struct
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest
from test_worker_comfy_faults import FAULTS, FaultyComfy
from worker_harness import WORKER_DIR, ComfyProxy, job, s3_client, send

from images.worker import comfy_client
from images.worker.comfy_client import ComfyClient
from images.worker.handler import run_job
from images.worker.job_input import parse_job_input
from images.worker.workflows import load_workflows


@pytest.fixture
def stand_in_500(comfy, monkeypatch):
    monkeypatch.setitem(FAULTS, "500", (500, b"500 Internal Server Error\n\nServer got itself in trouble",
                                        "text/plain"))
    stand_in = FaultyComfy(comfy.url, ["500"]).start()
    yield stand_in
    stand_in.stop()


def test_a_history_poll_answered_500_is_retried_and_the_job_completes(stand_in_500, models_dir, runtime_factory,
                                                                      storage):
    out = run_job(job(), runtime_factory(stand_in_500.url, models_dir))
    assert "error" not in out, out
    assert stand_in_500.history_polls > 1
    head = s3_client(storage.endpoint_url).head_object(Bucket=storage.bucket, Key=out["images"][0]["key"])
    assert head["ContentLength"] == out["images"][0]["bytes"]
    assert stand_in_500.withdrawals() == []


class _CutErrorComfy(ComfyProxy):
    """Forwards to `upstream`; its first GET /history poll gets a 503's status line and headers, then a reset
    connection partway into the body (ComfyUI killed, or its process restarting, while it answered)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.history_polls = 0

    def intercept(self, handler: BaseHTTPRequestHandler) -> bool:
        if handler.command != "GET" or not handler.path.startswith("/history/"):
            return False
        self.history_polls += 1
        if self.history_polls != 1:
            return False
        send(handler, 503, b'{"error": "bu', "application/json", length=100, close=True)
        handler.wfile.flush()
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
        handler.connection.close()
        return True


def test_an_error_answer_cut_short_is_retried_like_any_failed_poll(comfy, models_dir, runtime_factory, storage):
    # Not "internal worker error (ConnectionResetError)": a poll whose answer broke off is one that may pass.
    stand_in = _CutErrorComfy(comfy.url)
    try:
        out = run_job(job(), runtime_factory(stand_in.url, models_dir))
    finally:
        stand_in.stop()
    assert "error" not in out, out
    assert stand_in.history_polls > 1
    head = s3_client(storage.endpoint_url).head_object(Bucket=storage.bucket, Key=out["images"][0]["key"])
    assert head["ContentLength"] == out["images"][0]["bytes"]


def _running(base_url: str, prompt_id: str) -> bool:
    with urllib.request.urlopen(base_url + "/queue", timeout=5) as resp:
        return any(item[1] == prompt_id for item in json.loads(resp.read())["queue_running"])


def test_a_prompt_queued_without_an_answer_that_does_not_stop_retires_the_worker(models_dir, comfy_factory,
                                                                                 runtime_factory, monkeypatch):
    # POST /prompt reached ComfyUI and its answer was lost; the worker withdraws the prompt, which runs on past
    # the withdrawal (a node that does not stop). Every later job on this worker would queue behind it, as after
    # a timed-out prompt that does not stop (test_worker_stuck_prompt.py): RunPod must replace the worker.
    monkeypatch.setattr(comfy_client, "WITHDRAW_TIMEOUT_S", 0.5)
    comfy = comfy_factory(models_dir, render_delay_s=120, interrupt_lag_s=3.0)
    assert comfy.wait_listening(10)
    withdraw = ComfyClient.withdraw

    def once_running(self: ComfyClient, prompt_id: str) -> bool:
        # The case at hand is a prompt ComfyUI has started (one still pending leaves the queue when deleted): on a
        # loaded machine the withdrawal could otherwise come before ComfyUI takes the prompt from its queue.
        deadline = time.monotonic() + 10
        while not _running(comfy.url, prompt_id) and time.monotonic() < deadline:
            time.sleep(0.02)
        return withdraw(self, prompt_id)

    monkeypatch.setattr(ComfyClient, "withdraw", once_running)
    stand_in = FaultyComfy(comfy.url, [], lose_prompt_answer=True).start()
    try:
        out = run_job(job(), runtime_factory(stand_in.url, models_dir))
    finally:
        stand_in.stop()
    (prompt_id,) = stand_in.prompt_ids
    assert out.get("refresh_worker") is True, out
    assert "POST /prompt" in out["error"] and prompt_id in out["error"], out
    assert "still running it 0.5 s after the interrupt" in out["error"], out


def test_another_clients_prompt_in_the_queue_does_not_retire_the_worker(models_dir, comfy_factory, runtime_factory,
                                                                        monkeypatch):
    # Another client of this ComfyUI holds it with a long render; this job's prompt waits behind it and times out.
    # Withdrawn, this job's prompt leaves the queue at once: only the other client's prompt is still listed, which
    # says nothing about this worker being stuck, so RunPod must not be asked to replace it.
    monkeypatch.setattr(comfy_client, "WITHDRAW_TIMEOUT_S", 0.5)
    comfy = comfy_factory(models_dir, render_delay_s=120)
    assert comfy.wait_listening(10)
    workflows = load_workflows(WORKER_DIR / "workflows")
    other = parse_job_input(job(job_id="other-client")["input"], workflows).graph
    other_id = ComfyClient(comfy.url).queue_prompt(other, client_id="another-client")
    out = run_job(job(), runtime_factory(comfy.url, models_dir, COMFY_JOB_TIMEOUT_S="1"))
    assert out["error"].startswith("ComfyUI did not finish prompt"), out
    assert "refresh_worker" not in out and "still running" not in out["error"], out
    ComfyClient(comfy.url).withdraw(other_id)
