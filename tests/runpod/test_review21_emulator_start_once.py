"""`with RunPodEmulator(...).start() as emu` (start, then __enter__'s start) serves once, and a stopped emulator
leaves no thread serving. A second serving thread outlived stop(): it polled the closed socket at 100% of a core,
then answered the connections of the next socket given its fd number (a test's S3 server answered 404 to
CreateBucket, and its own thread blocked in accept, hanging the run at teardown)."""

from __future__ import annotations

import threading

import pytest
from emulator_harness import API_KEY

from goldgate.local.runpod import EmulatorConfig, RunPodEmulator


def _serving() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name in ("runpod-emulator-http", "runpod-emulator-tick")}


def test_started_then_entered_it_serves_once_and_stops_whole(tmp_path) -> None:
    before = _serving()
    emulator = RunPodEmulator(EmulatorConfig(api_key=API_KEY, logs_dir=tmp_path / "logs"))
    with emulator.start() as emu:
        assert emu is emulator
        assert len(_serving() - before) == 2  # one HTTP loop, one tick
    alive = [t for t in _serving() - before if t.is_alive()]
    for thread in alive:
        thread.join(timeout=5)
    assert not [t for t in alive if t.is_alive()]


def test_a_stopped_emulator_is_not_started_again(tmp_path) -> None:
    emu = RunPodEmulator(EmulatorConfig(api_key=API_KEY, logs_dir=tmp_path / "logs")).start()
    emu.stop()
    with pytest.raises(RuntimeError, match="this RunPod emulator was stopped; start a new one"):
        emu.start()
