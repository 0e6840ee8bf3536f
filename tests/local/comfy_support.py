"""The ComfyUI emulator as the tests of its HTTP answers run it: models with one checkpoint (base.safetensors), its
outputs under the test's tmp_path, its log lines kept off the test's output; and a prompt that renders on it."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from goldgate.local.comfyui import ComfyUIEmulator


@contextmanager
def comfyui(tmp_path: Path, **options: Any) -> Iterator[ComfyUIEmulator]:
    """The emulator (with ComfyUIEmulator's `options`, e.g. render_delay_s), listening until the block ends; each
    one of a test writes its outputs to a folder of its own."""
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True, exist_ok=True)
    (models / "checkpoints" / "base.safetensors").write_bytes(b"x")
    output = Path(tempfile.mkdtemp(prefix="out-", dir=tmp_path))
    emulator = ComfyUIEmulator(models, output, log_stream=io.StringIO(), **options).start()
    try:
        assert emulator.wait_listening(10)
        yield emulator
    finally:
        emulator.stop()


def prompt_graph() -> dict[str, Any]:
    """A text-to-image prompt over base.safetensors; its image is the output of node "9" (SaveImage)."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "base.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "model": ["4", 0], "seed": 1, "steps": 1, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["5", 0], "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "t"}},
    }
