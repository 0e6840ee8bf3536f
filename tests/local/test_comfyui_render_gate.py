"""The ComfyUI emulator's render gate (COMFY_EMULATOR_HOLD_DIR), what drills and chaos tests hold a job with:
while `<dir>/release` is absent every prompt stays running; once it exists prompts complete; /interrupt still
stops a held prompt at once."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import wait_until

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.comfyui import ComfyUIEmulator

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    directory = tmp_path / "gate"
    directory.mkdir()
    return directory


@pytest.fixture
def comfy(tmp_path: Path, gate: Path) -> Iterator[httpx.Client]:
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "base.safetensors").write_bytes(b"x")
    emulator = ComfyUIEmulator(models, tmp_path / "out", log_stream=io.StringIO(), hold_dir=gate).start()
    assert emulator.wait_listening(10)
    with httpx.Client(base_url=emulator.url, timeout=30) as client:
        yield client
    emulator.stop()


def _graph(seed: int) -> dict[str, Any]:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "base.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "model": ["4", 0], "seed": seed, "steps": 1, "cfg": 7.0, "sampler_name": "euler",
            "scheduler": "normal", "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["5", 0],
            "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "gate"}},
    }


def _submit(comfy: httpx.Client, seed: int) -> str:
    accepted = comfy.post("/prompt", json={"prompt": _graph(seed)})
    assert accepted.status_code == 200, accepted.text
    return accepted.json()["prompt_id"]


def _running(comfy: httpx.Client) -> list[str]:
    return [entry[1] for entry in comfy.get("/queue").json()["queue_running"]]


def _outcome(comfy: httpx.Client, prompt_id: str) -> dict[str, Any] | None:
    return comfy.get(f"/history/{prompt_id}").json().get(prompt_id)


def test_a_held_prompt_keeps_running_until_release_then_completes(comfy: httpx.Client, gate: Path) -> None:
    prompt_id = _submit(comfy, 1)
    assert wait_until(lambda: _running(comfy) == [prompt_id], 10)
    time.sleep(0.5)  # ten looks at the gate: not a wait for something to happen, a window where nothing may
    assert _running(comfy) == [prompt_id] and _outcome(comfy, prompt_id) is None
    (gate / "release").touch()
    assert wait_until(lambda: _outcome(comfy, prompt_id), 10), "the released prompt never finished"
    done = _outcome(comfy, prompt_id)
    assert done["status"]["status_str"] == "success" and done["outputs"]["9"]["images"], done
    assert not _running(comfy)


def test_the_gate_holds_again_once_release_is_gone(comfy: httpx.Client, gate: Path) -> None:
    (gate / "release").touch()
    first = _submit(comfy, 1)
    assert wait_until(lambda: _outcome(comfy, first), 10), "an open gate held a prompt"
    (gate / "release").unlink()
    second = _submit(comfy, 2)
    assert wait_until(lambda: _running(comfy) == [second], 10)
    time.sleep(0.5)  # a window where the held prompt must not finish
    assert _outcome(comfy, second) is None
    (gate / "release").touch()
    assert wait_until(lambda: _outcome(comfy, second), 10)


def test_an_interrupt_stops_a_held_prompt_at_once(comfy: httpx.Client) -> None:
    prompt_id = _submit(comfy, 1)
    assert wait_until(lambda: _running(comfy) == [prompt_id], 10)
    assert comfy.post("/interrupt", json={"prompt_id": prompt_id}).status_code == 200
    assert wait_until(lambda: _outcome(comfy, prompt_id), 10), "the gate kept an interrupted prompt running"
    done = _outcome(comfy, prompt_id)
    assert done["status"]["status_str"] == "error" and not done["outputs"], done
    assert "execution_interrupted" in [event for event, _ in done["status"]["messages"]]
    assert not _running(comfy)


def test_a_worker_refuses_a_hold_dir_that_does_not_exist(tmp_path: Path) -> None:
    # A mistyped gate would hold every job forever: the worker says so at boot instead.
    snapshot = image_store.resolve(image_store.build_local_image(WORKER_SOURCE, tmp_path / "home"),
                                   tmp_path / "home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "GOLDGATE_LIFELINE"))}
    env.update({"COMFY_EMULATOR_STARTUP_S": "0", "COMFY_EMULATOR_HOLD_DIR": str(tmp_path / "no-such-dir")})
    done = subprocess.run([sys.executable, "-m", "goldgate.local.worker_process", "--snapshot", str(snapshot),
                           "--", "--test_input", json.dumps({"input": {}})],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    refused = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert [entry["event"] for entry in refused] == ["local_worker_refused"], refused
    assert "COMFY_EMULATOR_HOLD_DIR" in refused[0]["message"] and "no-such-dir" in refused[0]["message"]
