"""What the local RunPod emulator keeps does not grow for as long as a stack serves (bench/soak.py): its record of
webhook attempts holds the newest ones only, and the logs of workers gone for a week are removed while it runs
(an endpoint that scales to zero between bursts starts new workers, each with a log of its own, all day)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from goldgate.local.runpod import EmulatorConfig, FaultConfig, RunPodEmulator
from goldgate.local.runpod.eventlog import EventLog
from goldgate.local.runpod.webhooks import WebhookDispatcher
from goldgate.runpod import ControlPlaneClient, EndpointConfig

API_KEY = "rp_test_key_0123456789abcdef"
HISTORY_MAX = 1000  # webhooks.HISTORY_MAX
WEEK_AND_A_DAY_S = 8 * 86_400


def test_the_record_of_webhook_attempts_keeps_the_newest_thousand(tmp_path: Path) -> None:
    # Every delivery lost (drop_all): each send records its attempt at once, no receiver needed.
    config = EmulatorConfig(api_key=API_KEY, faults=FaultConfig(drop_all_deliveries_rate=1.0))
    with (tmp_path / "runpod-emulator.jsonl").open("w") as stream:
        dispatcher = WebhookDispatcher(config, EventLog(stream, "staging"))
        try:
            for n in range(2 * HISTORY_MAX + 500):
                dispatcher.send(f"job-{n}", "http://127.0.0.1:9/api/runpod/webhook", {"status": "COMPLETED"})
            history = list(dispatcher.history)
        finally:
            dispatcher.stop()
    assert len(history) == HISTORY_MAX
    assert [h.job_id for h in history[-2:]] == [f"job-{2 * HISTORY_MAX + 498}", f"job-{2 * HISTORY_MAX + 499}"]
    assert history[0].job_id == f"job-{HISTORY_MAX + 500}"  # the oldest went first


def _sleeper(image_ref: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """A worker that runs and takes no job: its log is a running worker's."""
    return [sys.executable, "-c", "import time; time.sleep(600)"], env


def _wait(predicate: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(0.05)
    return value


def test_the_logs_of_workers_gone_for_a_week_go_while_the_emulator_runs_and_a_running_workers_log_stays(
        tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old = time.time() - WEEK_AND_A_DAY_S
    gone, recent = logs / "worker-gone00000001.log", logs / "worker-recent0000001.log"
    for path in (gone, recent):
        path.write_text('{"event": "worker_started"}\n')
    os.utime(gone, (old, old))
    emu = RunPodEmulator(EmulatorConfig(api_key=API_KEY, logs_dir=logs, workers_dir=tmp_path / "workers"),
                         launcher=_sleeper).start()
    try:
        with ControlPlaneClient(API_KEY, emu.api_base) as control:
            control.create_endpoint(EndpointConfig(name="goldgate-test", image="local/worker@sha256:" + "a" * 64,
                                                   gpu_pools=("ADA_24",), workers_min=1, workers_max=1))
        [worker] = _wait(lambda: list(emu.fleet.pids()), "the endpoint's worker to run")
        running = logs / f"worker-{worker}.log"
        _wait(lambda: not gone.exists(), "the week-old log of a gone worker to be removed")
        assert recent.exists()  # a gone worker's log from today is kept

        # A running worker's log is kept however long it has been quiet (an idle worker writes nothing).
        os.utime(running, (old, old))
        assert emu.fleet.prune_logs() == 0
        assert running.exists() and recent.exists()
    finally:
        emu.stop()
