"""RunPodEmulator.start serves once: `with RunPodEmulator(...).start() as emu` (start, then __enter__) runs one
serving loop, and an emulator once stopped refuses to start again rather than serve on a closed socket."""

from __future__ import annotations

import threading

import pytest

from goldgate.local.runpod import EmulatorConfig, RunPodEmulator


def _serving() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "runpod-emulator-http" and t.is_alive())


def test_start_then_enter_serves_once_and_a_stopped_emulator_will_not_start_again() -> None:
    before = _serving()
    emulator = RunPodEmulator(EmulatorConfig(api_key="k"))
    with emulator.start() as emu:
        assert emu is emulator and _serving() == before + 1
    with pytest.raises(RuntimeError, match="this RunPod emulator was stopped; start a new one"):
        emulator.start()
