"""ComfyUI's wire format: the JSON bodies its HTTP API answers with, built from the backend's state."""

from __future__ import annotations

import platform
import sys
from typing import Any

from .backend import ComfyBackend, PromptInvalid

COMFYUI_VERSION = "0.3.40-emulated"
EMULATED_DEVICE = {"name": "cuda:0 Emulated GPU (goldgate ComfyUI emulator)", "type": "cuda", "index": 0,
                   "vram_total": 25_757_220_864, "vram_free": 25_000_000_000,
                   "torch_vram_total": 0, "torch_vram_free": 0}


def system_stats() -> dict[str, Any]:
    return {"system": {"os": sys.platform, "ram_total": 68_719_476_736, "ram_free": 60_000_000_000,
                       "comfyui_version": COMFYUI_VERSION, "python_version": sys.version,
                       "pytorch_version": "emulated", "embedded_python": False,
                       "argv": ["main.py", "--listen", "127.0.0.1"], "platform": platform.platform()},
            "devices": [dict(EMULATED_DEVICE)]}


def _jsonable(spec: tuple[Any, ...]) -> list[Any]:
    return [list(x) if isinstance(x, tuple) else x for x in spec]


def node_info(backend: ComfyBackend, class_type: str) -> dict[str, Any]:
    node = backend.node_types[class_type]
    required = {k: _jsonable(v) for k, v in backend.resolved_inputs(node).items()}
    return {"input": {"required": required, "optional": {}}, "input_order": {"required": list(required)},
            "output": list(node.outputs), "output_is_list": [False] * len(node.outputs),
            "output_name": list(node.outputs), "name": class_type, "display_name": class_type,
            "description": "", "python_module": node.python_module, "category": node.category,
            "output_node": node.output_node}


def object_info(backend: ComfyBackend, class_type: str | None = None) -> dict[str, Any]:
    known = backend.node_types   # ComfyUI's own, and the image's custom node types that have a stand-in
    if class_type is not None:
        return {class_type: node_info(backend, class_type)} if class_type in known else {}
    return {name: node_info(backend, name) for name in known}


def prompt_accepted(prompt_id: str, number: int, node_errors: dict[str, Any]) -> dict[str, Any]:
    return {"prompt_id": prompt_id, "number": number, "node_errors": node_errors}


def prompt_rejected(exc: PromptInvalid) -> dict[str, Any]:
    return {"error": exc.error, "node_errors": exc.node_errors}


def no_prompt() -> dict[str, Any]:
    return {"error": {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided",
                      "extra_info": {}}, "node_errors": {}}


def queue(backend: ComfyBackend) -> dict[str, Any]:
    running, pending = backend.queue_snapshot()
    return {"queue_running": running, "queue_pending": pending}


def prompt_info(backend: ComfyBackend) -> dict[str, Any]:
    return {"exec_info": {"queue_remaining": backend.remaining()}}
