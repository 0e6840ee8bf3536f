"""The ComfyUI emulator answers as ComfyUI does: hostile or malformed prompts get ComfyUI's errors and never a
connection closed without an answer (a worker would see a dropped connection, not ComfyUI's error); history,
model listings, saved file names, uploaded inputs and /ws events follow ComfyUI's rules."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets.sync.client
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.protocol import Protocol, Side, State

from goldgate.local.comfyui import ComfyUIEmulator

PNG_A = b"\x89PNG\r\n\x1a\n" + b"first image"
PNG_B = b"\x89PNG\r\n\x1a\n" + b"second image"


@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[ComfyUIEmulator]:
    models = tmp_path / "models"
    for folder, name in (("checkpoints", "base.safetensors"), ("loras", "style.safetensors")):
        (models / folder).mkdir(parents=True)
        (models / folder / name).write_bytes(b"x")
    emulator = ComfyUIEmulator(models, tmp_path / "out", log_stream=io.StringIO()).start()
    assert emulator.wait_listening(10)
    yield emulator
    emulator.stop()


def _post(comfy: ComfyUIEmulator, path: str, raw: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", comfy.port, timeout=30)
    try:
        conn.request("POST", path, raw, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _graph(model_link: list[Any]) -> dict[str, Any]:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "base.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "model": model_link, "seed": 1, "steps": 1, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["5", 0], "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "t"}},
    }


def test_a_prompt_whose_links_form_a_cycle_is_a_validation_error(comfy: ComfyUIEmulator) -> None:
    graph = _graph(["1", 0])
    graph["1"] = {"class_type": "LoraLoaderModelOnly",
                  "inputs": {"model": ["2", 0], "lora_name": "style.safetensors", "strength_model": 1.0}}
    graph["2"] = {"class_type": "LoraLoaderModelOnly",
                  "inputs": {"model": ["1", 0], "lora_name": "style.safetensors", "strength_model": 1.0}}
    status, raw = _post(comfy, "/prompt", json.dumps({"prompt": graph}).encode())
    body = json.loads(raw)
    assert status == 400
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    [error] = body["node_errors"]["9"]["errors"]
    assert error["type"] == "exception_during_validation" and error["message"] == "Exception when validating node"
    assert error["extra_info"]["exception_type"] == "RecursionError"
    # the emulator goes on serving: a sound prompt still runs
    status, raw = _post(comfy, "/prompt", json.dumps({"prompt": _graph(["4", 0])}).encode())
    assert status == 200 and json.loads(raw)["node_errors"] == {}


def test_requests_that_break_the_handler_get_an_answer_not_a_dropped_connection(comfy: ComfyUIEmulator) -> None:
    # ComfyUI (aiohttp) answers an unexpected exception with a 500; it never closes without an answer.
    with requests.Session() as session:  # a pooled connection, as most HTTP clients keep one
        broken = session.post(f"{comfy.url}/prompt", json={"prompt": {"9": {"class_type": ["SaveImage"],
                                                                             "inputs": {}}}}, timeout=30)
        assert broken.status_code == 500 and "Internal Server Error" in broken.text
        assert broken.headers["Connection"] == "close"  # the emulator closes after it: the pool must know
        assert session.get(f"{comfy.url}/queue", timeout=30).status_code == 200
    status, raw = _post(comfy, "/prompt", b"[" * 100_000 + b"]" * 100_000)
    assert status == 500 and b"Internal Server Error" in raw  # request.json() raised: aiohttp's 500, as ComfyUI's
    status, raw = _post(comfy, "/prompt", json.dumps({"prompt": _graph(["4", 0])}).encode())
    assert status == 200


def test_history_max_items_counts_from_the_newest_and_zero_is_none(comfy: ComfyUIEmulator) -> None:
    ids = [json.loads(_post(comfy, "/prompt", json.dumps({"prompt": _graph(["4", 0])}).encode())[1])["prompt_id"]
           for _ in range(2)]
    conn = http.client.HTTPConnection("127.0.0.1", comfy.port, timeout=30)

    def history(query: str) -> dict[str, Any]:
        conn.request("GET", "/history" + query)
        return json.loads(conn.getresponse().read())

    deadline = time.monotonic() + 30
    while len(history("")) < 2:
        assert time.monotonic() < deadline, "the two prompts never finished"
        time.sleep(0.05)
    assert list(history("?max_items=1")) == [ids[1]]
    assert history("?max_items=0") == {}  # ComfyUI: offset = len(history) - 0, so nothing
    conn.close()


def test_a_restarted_comfyui_numbers_on_and_never_overwrites_saved_images(tmp_path: Path) -> None:
    # ComfyUI picks the next counter from the files already in the output folder, not from memory.
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "base.safetensors").write_bytes(b"x")
    out = tmp_path / "out"
    saved = []
    for seed in (1, 2):
        graph = _graph(["4", 0])
        graph["3"]["inputs"]["seed"] = seed
        with ComfyUIEmulator(models, out, log_stream=io.StringIO()) as comfy:
            assert comfy.wait_listening(10)
            prompt_id = json.loads(_post(comfy, "/prompt", json.dumps({"prompt": graph}).encode())[1])["prompt_id"]
            deadline = time.monotonic() + 30
            while not comfy.backend.history(prompt_id):
                assert time.monotonic() < deadline, "the prompt never finished"
                time.sleep(0.05)
            [image] = comfy.backend.history(prompt_id)[prompt_id]["outputs"]["9"]["images"]
            saved.append((image["filename"], (out / image["filename"]).read_bytes()))
    assert [name for name, _ in saved] == ["t_00001_.png", "t_00002_.png"]
    assert (out / "t_00001_.png").read_bytes() == saved[0][1] != saved[1][1]


def test_models_of_an_unknown_folder_is_404_not_an_empty_list(comfy: ComfyUIEmulator) -> None:
    # ComfyUI: GET /models/{folder} is 404 unless the folder is one it knows; an empty list means "none there".
    conn = http.client.HTTPConnection("127.0.0.1", comfy.port, timeout=30)
    conn.request("GET", "/models/checkpoint")  # a typo of checkpoints
    resp = conn.getresponse()
    assert resp.status == 404
    resp.read()
    conn.request("GET", "/models/checkpoints")
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read()) == ["base.safetensors"]
    conn.close()


def test_upload_image_stores_an_input_as_comfyui_does(comfy: ComfyUIEmulator) -> None:
    # The official worker-comfyui handler uploads job images this way (requests, multipart/form-data) before it
    # queues a prompt that loads them; ComfyUI answers the name it stored the file under.
    url = f"{comfy.url}/upload/image"
    first = requests.post(url, files={"image": ("in.png", PNG_A, "image/png")}, data={"overwrite": "true"},
                          timeout=30)
    assert first.status_code == 200 and first.json() == {"name": "in.png", "subfolder": "", "type": "input"}
    view = requests.get(f"{comfy.url}/view", params={"filename": "in.png", "type": "input"}, timeout=30)
    assert view.status_code == 200 and view.content == PNG_A and view.headers["Content-Type"] == "image/png"
    jpeg = requests.post(url, files={"image": ("photo.jpg", b"\xff\xd8\xff jpeg")}, timeout=30).json()
    assert requests.get(f"{comfy.url}/view", params={"filename": jpeg["name"], "type": "input"},
                        timeout=30).headers["Content-Type"] == "image/jpeg"
    # without overwrite: the same bytes keep their name, different ones get ComfyUI's " (1)" name
    assert requests.post(url, files={"image": ("in.png", PNG_A)}, timeout=30).json()["name"] == "in.png"
    other = requests.post(url, files={"image": ("in.png", PNG_B)}, data={"subfolder": ""}, timeout=30)
    assert other.json() == {"name": "in (1).png", "subfolder": "", "type": "input"}
    nested = requests.post(url, files={"image": ("in.png", PNG_B)}, data={"subfolder": "jobs/42"}, timeout=30)
    assert nested.json() == {"name": "in.png", "subfolder": "jobs/42", "type": "input"}
    assert requests.get(f"{comfy.url}/view", params={"filename": "in.png", "subfolder": "jobs/42", "type": "input"},
                        timeout=30).content == PNG_B
    # ComfyUI refuses a path out of its input directory and a form without an image
    assert requests.post(url, files={"image": ("x.png", PNG_A)}, data={"subfolder": "../out"},
                         timeout=30).status_code == 400
    assert requests.post(url, data={"overwrite": "true"}, timeout=30).status_code == 400
    assert requests.post(url, files={"image": ("x.png", PNG_A)}, data={"type": "models"},
                         timeout=30).status_code == 500  # ComfyUI fails on an unknown type rather than refusing it


def _until_done(ws: Any, prompt_id: str) -> list[dict[str, Any]]:
    """Messages up to ComfyUI's end-of-prompt signal: 'executing' with node None for this prompt."""
    seen = []
    while True:
        message = json.loads(ws.recv(timeout=30))
        seen.append(message)
        if message["type"] == "executing" and message["data"]["node"] is None \
                and message["data"]["prompt_id"] == prompt_id:
            return seen


def test_ws_tells_the_prompts_client_when_it_is_done_as_comfyui_does(comfy: ComfyUIEmulator) -> None:
    # The official worker-comfyui handler waits on /ws?clientId=... for 'executing' with node None, then reads
    # /history: the entry must be there by then, and other clients hear only the queue status.
    ws_url = f"ws://127.0.0.1:{comfy.port}/ws"
    with websockets.sync.client.connect(f"{ws_url}?clientId=worker-1") as ws, \
            websockets.sync.client.connect(f"{ws_url}?clientId=bystander") as other:
        hello = json.loads(ws.recv(timeout=30))
        assert hello == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}},
                                                    "sid": "worker-1"}}
        status, raw = _post(comfy, "/prompt", json.dumps({"prompt": _graph(["4", 0]),
                                                           "client_id": "worker-1"}).encode())
        assert status == 200
        prompt_id = json.loads(raw)["prompt_id"]
        seen = _until_done(ws, prompt_id)
        assert comfy.backend.history(prompt_id)[prompt_id]["status"]["completed"] is True
        kinds = [m["type"] for m in seen]
        assert kinds.index("execution_start") < kinds.index("executed") < kinds.index("execution_success")
        [executed] = [m["data"] for m in seen if m["type"] == "executed"]
        assert executed["node"] == "9" and executed["prompt_id"] == prompt_id
        assert executed["output"]["images"][0]["filename"].startswith("t_")
        other.recv(timeout=30)  # its own hello
        heard = [json.loads(other.recv(timeout=30))["type"]]  # the queue's status, however slow the machine
        try:
            while True:
                heard.append(json.loads(other.recv(timeout=1))["type"])
        except TimeoutError:
            pass
        assert heard and set(heard) == {"status"}


def test_a_prompts_extra_data_is_kept_and_its_client_id_hears_the_events(comfy: ComfyUIEmulator) -> None:
    # ComfyUI keeps extra_data with the prompt (the web UI sends the workflow in extra_pnginfo there) and sends
    # the prompt's events to extra_data.client_id, whether the client put it there or at the top level.
    extra = {"extra_pnginfo": {"workflow": {"nodes": []}}, "client_id": "ui-7"}
    with websockets.sync.client.connect(f"ws://127.0.0.1:{comfy.port}/ws?clientId=ui-7") as ws:
        ws.recv(timeout=30)
        status, raw = _post(comfy, "/prompt", json.dumps({"prompt": _graph(["4", 0]), "extra_data": extra}).encode())
        assert status == 200
        prompt_id = json.loads(raw)["prompt_id"]
        _until_done(ws, prompt_id)
    assert comfy.backend.history(prompt_id)[prompt_id]["prompt"][3] == extra


def test_ws_closes_the_tcp_connection_once_the_close_handshake_is_done(comfy: ComfyUIEmulator) -> None:
    # RFC 6455 7.1.1: the server closes TCP first. Left open, every client waits out its own close timeout
    # (10 s in the websockets library) on each disconnect.
    with socket.create_connection(("127.0.0.1", comfy.port), timeout=30) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(f"GET /ws?clientId=c1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101")
        client = Protocol(Side.CLIENT, state=State.OPEN)
        client.send_close(CloseCode.NORMAL_CLOSURE)
        for data in client.data_to_send():
            sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):  # a server that keeps the connection open times this recv out
            received += chunk
        client.receive_data(received)
        client.receive_eof()
        assert any(isinstance(e, Frame) and e.opcode is Opcode.CLOSE for e in client.events_received())
        assert client.state is State.CLOSED and client.close_rcvd == Close(CloseCode.NORMAL_CLOSURE, "")
