"""A ComfyUI emulator for tests and the local target: moto-style backend (state, rules), responses
(ComfyUI's JSON shapes) and a thin HTTP server. It renders deterministic PNGs instead of running a GPU."""

from .backend import ComfyBackend
from .server import ComfyUIEmulator

__all__ = ["ComfyBackend", "ComfyUIEmulator"]
