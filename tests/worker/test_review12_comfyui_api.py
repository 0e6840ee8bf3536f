"""The ComfyUI emulator's POST /prompt as current ComfyUI answers it: every sampler and scheduler ComfyUI offers
validates, a prompt queued with "front" runs before those waiting, and a prompt_id is kept as ComfyUI keeps it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from worker_harness import WORKER_DIR, post_json

from goldgate.local.comfyui import ComfyUIEmulator
from goldgate.local.comfyui import backend as backend_module
from images.worker.comfy_client import ComfyClient
from images.worker.workflows import build_graph, load_workflows, resolve_inputs

WORKFLOWS = load_workflows(WORKER_DIR / "workflows")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _graph(seed: int = 1) -> dict[str, Any]:
    wf = WORKFLOWS["sdxl-txt2img"]
    return build_graph(wf, resolve_inputs(wf, {"prompt": "a lighthouse", "seed": seed}))


def _wait(predicate: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)
    return value


# Samplers and schedulers of ComfyUI's KSampler (comfy/samplers.py) that the emulator refused before.
@pytest.mark.parametrize(("sampler", "scheduler"), [
    ("lcm", "normal"), ("dpmpp_2m_sde_gpu", "karras"), ("dpmpp_3m_sde_gpu", "exponential"),
    ("uni_pc_bh2", "simple"), ("euler_ancestral_cfg_pp", "kl_optimal"), ("res_multistep", "linear_quadratic"),
])
def test_every_sampler_and_scheduler_comfyui_offers_validates_and_renders(comfy: ComfyUIEmulator, sampler: str,
                                                                        scheduler: str) -> None:
    graph = _graph()
    graph["3"]["inputs"].update(sampler_name=sampler, scheduler=scheduler)
    client = ComfyClient(comfy.url, 0.02)
    images = client.wait_for_outputs(client.queue_prompt(graph, "t"), 10)
    assert len(images) == 1 and client.fetch_image(images[0]).startswith(b"\x89PNG")
    required = _get(comfy.url + "/object_info/KSampler")["KSampler"]["input"]["required"]
    assert sampler in required["sampler_name"][0] and scheduler in required["scheduler"][0]


def test_an_unknown_sampler_is_still_value_not_in_list_with_comfyuis_long_list_text(comfy: ComfyUIEmulator) -> None:
    graph = _graph()
    graph["3"]["inputs"]["sampler_name"] = "magic"
    status, body = post_json(comfy.url + "/prompt", {"prompt": graph})
    assert status == 400
    [error] = body["node_errors"]["3"]["errors"]
    # ComfyUI does not echo a list longer than 20 choices back.
    assert error["type"] == "value_not_in_list" and error["details"].startswith("sampler_name: 'magic' not in (list")


def test_a_prompt_queued_at_the_front_runs_before_those_waiting(models_dir: Path, tmp_path: Path,
                                                                comfy_factory: Callable[..., ComfyUIEmulator]) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    comfy = comfy_factory(models_dir, hold_dir=gate)
    assert comfy.wait_listening(10)
    status, held = post_json(comfy.url + "/prompt", {"prompt": _graph(1)})
    assert status == 200
    _wait(lambda: _get(comfy.url + "/queue")["queue_running"], "the first prompt to run")
    status, waiting = post_json(comfy.url + "/prompt", {"prompt": _graph(2)})
    assert status == 200
    status, urgent = post_json(comfy.url + "/prompt", {"prompt": _graph(3), "front": True})
    assert status == 200 and urgent["number"] < 0 < waiting["number"]
    (gate / "release").touch()
    ids = [held["prompt_id"], waiting["prompt_id"], urgent["prompt_id"]]
    history = _wait(lambda: (h := _get(comfy.url + "/history")) and set(ids) <= set(h) and h, "all three to finish")
    assert [pid for pid in history if pid in ids] == [held["prompt_id"], urgent["prompt_id"], waiting["prompt_id"]]


def test_a_prompt_id_of_another_json_type_is_kept_as_its_text(comfy: ComfyUIEmulator) -> None:
    status, body = post_json(comfy.url + "/prompt", {"prompt": _graph(), "prompt_id": 42})
    assert status == 200 and body["prompt_id"] == "42"
    entry = _wait(lambda: _get(comfy.url + "/history/42").get("42"), "the prompt's history entry")
    assert entry["status"]["status_str"] == "success"


def _flux_graph(text_encoder: dict[str, Any]) -> dict[str, Any]:
    wf = WORKFLOWS["flux-schnell-lora"]
    graph = build_graph(wf, resolve_inputs(wf, {"prompt": "a lighthouse"}))
    graph["11"] = text_encoder
    return graph


def test_a_single_clip_loader_refuses_the_dual_only_types_as_comfyui_does(comfy: ComfyUIEmulator) -> None:
    # "flux" is a DualCLIPLoader type: ComfyUI answers a CLIPLoader with it 400, so the release must not pass locally.
    graph = _flux_graph({"class_type": "CLIPLoader", "inputs": {"clip_name": "clip_l.safetensors", "type": "flux"}})
    status, body = post_json(comfy.url + "/prompt", {"prompt": graph})
    assert status == 400 and body["error"]["type"] == "prompt_outputs_failed_validation"
    [error] = body["node_errors"]["11"]["errors"]
    assert error["type"] == "value_not_in_list" and error["details"].startswith("type: 'flux' not in [")


@pytest.mark.parametrize("text_encoder", [
    {"class_type": "CLIPLoader", "inputs": {"clip_name": "t5xxl_fp8_e4m3fn.safetensors", "type": "qwen_image"}},
    {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "t5xxl_fp8_e4m3fn.safetensors",
                                                "clip_name2": "clip_l.safetensors", "type": "hidream"}},
])
def test_the_clip_types_comfyui_offers_validate(comfy: ComfyUIEmulator, text_encoder: dict[str, Any]) -> None:
    status, body = post_json(comfy.url + "/prompt", {"prompt": _flux_graph(text_encoder)})
    assert status == 200 and body["node_errors"] == {}, body


def test_a_link_naming_its_node_by_a_number_is_refused_as_comfyui_refuses_it(comfy: ComfyUIEmulator) -> None:
    # Node ids are the prompt's keys, strings: ComfyUI looks 4 up as a key, finds no node, and answers 400.
    graph = _graph()
    graph["3"]["inputs"]["model"] = [4, 0]
    status, body = post_json(comfy.url + "/prompt", {"prompt": graph})
    assert status == 400 and body["error"]["type"] == "prompt_outputs_failed_validation"
    assert "3" in body["node_errors"]


def _upload(comfy: ComfyUIEmulator, name: str, data: bytes) -> None:
    boundary = "goldgate-test-boundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(comfy.url + "/upload/image", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["name"] == name


def _view(comfy: ComfyUIEmulator, name: str) -> tuple[int, dict[str, str], bytes]:
    query = urllib.parse.urlencode({"filename": name, "type": "input"})
    with urllib.request.urlopen(f"{comfy.url}/view?{query}", timeout=10) as resp:
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()


def test_view_names_the_file_and_sends_a_page_as_a_download_as_comfyui_does(comfy: ComfyUIEmulator) -> None:
    _upload(comfy, "cat.png", b"\x89PNG not really")
    status, headers, data = _view(comfy, "cat.png")
    assert status == 200 and data == b"\x89PNG not really"
    assert headers["content-type"] == "image/png" and headers["content-disposition"] == 'filename="cat.png"'
    # A page (or script) from /view is never shown by the browser: ComfyUI sends it as a download.
    _upload(comfy, "note.html", b"<script>alert(1)</script>")
    status, headers, _ = _view(comfy, "note.html")
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    # A name beyond latin-1 is still served (aiohttp writes the header as UTF-8).
    _upload(comfy, "猫.png", b"\x89PNG cat")
    status, headers, data = _view(comfy, "猫.png")
    assert status == 200 and data == b"\x89PNG cat"
    assert headers["content-disposition"].encode("latin-1").decode() == 'filename="猫.png"'


def test_history_keeps_as_many_prompts_as_comfyui_keeps(comfy: ComfyUIEmulator, monkeypatch) -> None:
    # ComfyUI drops its oldest history entry once it holds more than MAXIMUM_HISTORY_SIZE (10000); a small bound
    # here shows the rule without running ten thousand prompts.
    monkeypatch.setattr(backend_module, "MAX_HISTORY", 2, raising=False)
    client = ComfyClient(comfy.url, 0.02)
    ids = []
    for seed in range(5):
        ids.append(client.queue_prompt(_graph(seed), "t"))
        client.wait_for_outputs(ids[-1], 10)
    assert list(_get(comfy.url + "/history")) == ids[-3:]
    assert _get(comfy.url + f"/history/{ids[0]}") == {}
