"""The ComfyUI emulator answers a POST whose body is not what ComfyUI expects as ComfyUI's aiohttp routes do:
/interrupt takes a body that is not JSON as no body and interrupts whatever runs (ComfyUI's "global interrupt"),
/prompt, /queue and /history let request.json() fail into aiohttp's 500 (there is no ComfyUI error type for it),
and /queue and /history apply `in` to any JSON (a list without the key does nothing). Before, each of these got a
ComfyUI-shaped 400 of a type ComfyUI never sends ("invalid_json"), or a 404, and /interrupt interrupted nothing."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from comfy_support import comfyui, prompt_graph
from serving import wait_until

from goldgate.local.comfyui import ComfyUIEmulator


@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[ComfyUIEmulator]:
    # A render that lasts until something interrupts it (or the emulator stops).
    with comfyui(tmp_path, render_delay_s=600) as emulator:
        yield emulator


def _request(comfy: ComfyUIEmulator, method: str, path: str, raw: bytes | None = None) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", comfy.port, timeout=30)
    try:
        conn.request(method, path, raw, {"Content-Type": "application/json"} if raw is not None else {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()
    finally:
        conn.close()


def test_an_interrupt_whose_body_is_not_json_interrupts_the_running_prompt(comfy: ComfyUIEmulator) -> None:
    prompt = json.dumps({"prompt": prompt_graph(), "client_id": "c"}).encode()
    status, _, raw = _request(comfy, "POST", "/prompt", prompt)
    assert status == 200, raw
    prompt_id = json.loads(raw)["prompt_id"]

    def running() -> bool:
        return bool(json.loads(_request(comfy, "GET", "/queue")[2])["queue_running"])

    wait_until(running, "the prompt running", 20, "the emulator never began the prompt it took")
    status, _, raw = _request(comfy, "POST", "/interrupt", b"stop now")
    assert status == 200, raw

    def entry() -> dict[str, Any] | None:
        return json.loads(_request(comfy, "GET", f"/history/{prompt_id}")[2]).get(prompt_id)

    wait_until(entry, "the interrupted prompt in its history", 20, "the interrupt did not end it")
    finished = entry()
    assert finished["status"]["status_str"] == "error", finished["status"]
    assert "execution_interrupted" in [name for name, _ in finished["status"]["messages"]], finished["status"]


@pytest.mark.parametrize("path", ["/prompt", "/api/prompt", "/queue", "/history"])
@pytest.mark.parametrize("raw", [b"{not json", b""], ids=["broken", "empty"])
def test_a_body_that_is_not_json_gets_aiohttps_500_not_a_comfyui_error(comfy: ComfyUIEmulator, path: str,
                                                                      raw: bytes) -> None:
    status, content_type, body = _request(comfy, "POST", path, raw)
    assert (status, content_type) == (500, "text/plain; charset=utf-8"), body
    assert body.startswith(b"500 Internal Server Error"), body
    # The emulator still answers the next request.
    assert _request(comfy, "GET", "/queue")[0] == 200


@pytest.mark.parametrize("path", ["/queue", "/history"])
def test_queue_and_history_take_a_json_list_as_comfyui_does(comfy: ComfyUIEmulator, path: str) -> None:
    # `"delete" in [...]` is False in ComfyUI's route: nothing to do, and a 200 (before: a 404, as if no such route).
    status, _, body = _request(comfy, "POST", path, b'["something"]')
    assert (status, body) == (200, b"")


def test_view_reads_a_name_annotated_with_its_directory_as_comfyui_does(tmp_path: Path) -> None:
    # The front end names an output, or an input it uploaded, "x.png [output]" / "x.png [input]": ComfyUI's /view
    # strips the annotation and reads that directory whatever `type` says (before: 404, or 400 for the type).
    with comfyui(tmp_path) as emulator:
        status, _, raw = _request(emulator, "POST", "/prompt", json.dumps({"prompt": prompt_graph()}).encode())
        assert status == 200, raw
        prompt_id = json.loads(raw)["prompt_id"]

        def entry() -> dict[str, Any] | None:
            return json.loads(_request(emulator, "GET", f"/history/{prompt_id}")[2]).get(prompt_id)

        wait_until(entry, "the prompt's history entry", 20, "the prompt never finished")
        [image] = entry()["outputs"]["9"]["images"]
        plain = _request(emulator, "GET", f"/view?filename={image['filename']}")
        for query in (f"filename={image['filename']}%20%5Boutput%5D&type=input",
                      f"filename={image['filename']}%20%5Boutput%5D&type=bogus"):
            status, content_type, body = _request(emulator, "GET", f"/view?{query}")
            assert (status, content_type, body) == (200, "image/png", plain[2]), query
        # annotated with another directory, the same name is not there
        assert _request(emulator, "GET", f"/view?filename={image['filename']}%20%5Btemp%5D")[0] == 404
