"""Mutation audit (session 29): the ComfyUI emulator's POST routes as ComfyUI's: an unknown path is aiohttp's 404,
`{"clear": true}` on /history clears the history (not the queue), and /queue and /history apply `in` and [] to
whatever JSON came, so a list naming the key raises into aiohttp's 500 as ComfyUI's route does."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from comfy_support import comfyui, prompt_graph

from goldgate.local.comfyui import ComfyUIEmulator


@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[ComfyUIEmulator]:
    with comfyui(tmp_path) as emulator:
        yield emulator


def _request(comfy: ComfyUIEmulator, method: str, path: str, raw: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", comfy.port, timeout=30)
    try:
        conn.request(method, path, raw, {"Content-Type": "application/json"} if raw is not None else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _queue_prompt(comfy: ComfyUIEmulator) -> str:
    status, raw = _request(comfy, "POST", "/prompt", json.dumps({"prompt": prompt_graph()}).encode())
    assert status == 200, raw
    return json.loads(raw)["prompt_id"]


def test_a_post_to_a_path_comfyui_has_no_route_for_is_its_404(comfy: ComfyUIEmulator) -> None:
    assert _request(comfy, "POST", "/no-such-route", b"{}") == (404, b"404: Not Found")


def test_clear_on_history_clears_the_history_and_leaves_the_queue(tmp_path: Path) -> None:
    with comfyui(tmp_path) as done:
        prompt_id = _queue_prompt(done)
        deadline = time.monotonic() + 20
        while not json.loads(_request(done, "GET", f"/history/{prompt_id}")[1]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert json.loads(_request(done, "GET", "/history")[1]), "the prompt never finished"
        assert _request(done, "POST", "/history", b'{"clear": true}') == (200, b"")
        assert json.loads(_request(done, "GET", "/history")[1]) == {}
    with comfyui(tmp_path, render_delay_s=600) as slow:
        prompts = {_queue_prompt(slow), _queue_prompt(slow)}   # one running, one pending behind it
        deadline = time.monotonic() + 20
        while _queued(slow) != prompts and time.monotonic() < deadline:   # the first one taken up meanwhile
            time.sleep(0.05)
        assert _queued(slow) == prompts
        assert _request(slow, "POST", "/history", b'{"clear": true}') == (200, b"")
        assert _queued(slow) == prompts


def _queued(comfy: ComfyUIEmulator) -> set[str]:
    """The prompt ids GET /queue lists, running or pending."""
    queue = json.loads(_request(comfy, "GET", "/queue")[1])
    return {item[1] for item in queue["queue_running"] + queue["queue_pending"]}


@pytest.mark.parametrize("path", ["/queue", "/history"])
@pytest.mark.parametrize("raw", [b'["clear"]', b'["delete"]'], ids=["clear", "delete"])
def test_a_json_list_naming_the_key_is_aiohttps_500(comfy: ComfyUIEmulator, path: str, raw: bytes) -> None:
    status, body = _request(comfy, "POST", path, raw)
    assert status == 500 and body.startswith(b"500 Internal Server Error"), (status, body)
    assert _request(comfy, "GET", "/queue")[0] == 200   # it still answers
