"""A worker whose preflight fails stops its ComfyUI emulator right after starting it. The emulator's thread could
then listen on the socket stop() had just closed, and die with a traceback on the worker's stderr (a line that is
no log line; seen under CI load)."""

from __future__ import annotations

import threading
from pathlib import Path

from goldgate.local.comfyui.server import ComfyUIEmulator


def test_an_emulator_stopped_right_after_it_starts_leaves_no_thread_traceback(tmp_path: Path, monkeypatch) -> None:
    died: list[str] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(f"{args.thread.name}: {args.exc_value!r}"))
    (tmp_path / "models").mkdir()
    for _ in range(120):
        emulator = ComfyUIEmulator(tmp_path / "models").start()
        emulator.stop()
        assert emulator._thread is not None and not emulator._thread.is_alive()
    assert died == []
