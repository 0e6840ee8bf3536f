"""Fixtures for the RunPod client and emulator tests (see emulator_harness)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_harness import API_KEY, FlakyRunPod, Stack, WebhookReceiver, sdk_launcher

from goldgate.local.runpod import EmulatorConfig, FaultConfig, RunPodEmulator
from goldgate.runpod import ControlPlaneClient


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    started: list[Stack] = []

    def make(faults: FaultConfig | None = None, **config: Any) -> Stack:
        settings: dict[str, Any] = {"api_key": API_KEY, "logs_dir": tmp_path / f"logs{len(started)}",
                                    "job_take_hold_s": 0.5, "ping_interval_ms": 1000, "worker_stop_grace_s": 3.0,
                                    "webhook_retry_delay_s": 0.2, "faults": faults or FaultConfig()}
        cfg = EmulatorConfig(**{**settings, **config})
        emu = RunPodEmulator(cfg, launcher=sdk_launcher).start()
        stack = Stack(emu, ControlPlaneClient(API_KEY, emu.api_base))
        started.append(stack)
        return stack

    yield make
    for stack in started:
        stack.control.close()
        # Nothing is checked after the test: its workers are killed rather than given the SDK's graceful exit,
        # which takes about a second (its stop-signal poll backs off for one) and every test would wait out.
        for pid in stack.emulator.fleet.pids().values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # a worker leads its session: this takes the SDK's child too
        stack.emulator.stop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()


@pytest.fixture
def flaky() -> Iterator[Any]:
    made: list[FlakyRunPod] = []

    def make(script: dict[str, list[tuple[int, Any, dict[str, str]]]]) -> FlakyRunPod:
        made.append(FlakyRunPod(script))
        return made[-1]

    yield make
    for f in made:
        f.close()
