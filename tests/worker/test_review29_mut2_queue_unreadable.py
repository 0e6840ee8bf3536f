"""Mutation audit (session 29): the worker ends a wait as "ComfyUI lost prompt" only when ComfyUI's /queue says the
prompt is not there. A /queue answer that says nothing (an HTTP error, a body that is not JSON, JSON without the two
lists ComfyUI always sends) is no such answer: the job waits for its render and completes."""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from worker_harness import ComfyProxy, job, send

from goldgate.local.comfyui import ComfyUIEmulator
from images.worker.handler import run_job


class QueueSaysNothing(ComfyProxy):
    """Forwards everything to ComfyUI but GET /queue, which it answers with `status` and `data`."""

    def __init__(self, upstream: str, status: int, data: bytes) -> None:
        super().__init__(upstream)
        self.status, self.data, self.asked = status, data, 0

    def intercept(self, handler: BaseHTTPRequestHandler) -> bool:
        if handler.command == "GET" and handler.path == "/queue":
            self.asked += 1
            send(handler, self.status, self.data, "application/json")
            return True
        return False


@pytest.mark.parametrize(("status", "data"), [(500, b"500 Internal Server Error"), (200, b"not json"),
                                              (200, b"{}"), (200, b'{"queue_running": []}')],
                         ids=["http-500", "not-json", "empty-object", "one-list"])
def test_a_queue_answer_that_says_nothing_is_no_lost_prompt(
        models_dir: Path, comfy_factory: Callable[..., ComfyUIEmulator], runtime_factory: Callable[..., Any],
        status: int, data: bytes) -> None:
    comfy = comfy_factory(models_dir, render_delay_s=1.5)
    assert comfy.wait_listening(10)
    stand_in = QueueSaysNothing(comfy.url, status, data)
    try:
        out = run_job(job(), runtime_factory(stand_in.url, models_dir, COMFY_JOB_TIMEOUT_S="60"))
    finally:
        stand_in.stop()
    assert "error" not in out, out
    assert len(out["images"]) == 1, out
    assert stand_in.asked >= 1   # the wait did ask the queue


class HistoryHiccupsAfterQueue(ComfyProxy):
    """A ComfyUI whose /queue no longer lists the prompt (it left the queue) and whose /history read right after
    such a /queue answer fails in passing (500): the entry may still come, so the wait goes on."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.after_queue, self.hiccups = False, 0

    def intercept(self, handler: BaseHTTPRequestHandler) -> bool:
        if handler.command == "GET" and handler.path == "/queue":
            self.after_queue = True
            send(handler, 200, b'{"queue_running": [], "queue_pending": []}', "application/json")
            return True
        if handler.command == "GET" and handler.path.startswith("/history/") and self.after_queue:
            self.after_queue = False
            self.hiccups += 1
            send(handler, 500, b"500 Internal Server Error", "text/plain")
            return True
        return False


def test_a_history_read_that_fails_during_the_lost_check_is_no_lost_prompt(
        models_dir: Path, comfy_factory: Callable[..., ComfyUIEmulator], runtime_factory: Callable[..., Any]) -> None:
    comfy = comfy_factory(models_dir, render_delay_s=1.5)
    assert comfy.wait_listening(10)
    stand_in = HistoryHiccupsAfterQueue(comfy.url)
    try:
        out = run_job(job(), runtime_factory(stand_in.url, models_dir, COMFY_JOB_TIMEOUT_S="60"))
    finally:
        stand_in.stop()
    assert "error" not in out, out
    assert len(out["images"]) == 1 and stand_in.hiccups >= 1, (out, stand_in.hiccups)
