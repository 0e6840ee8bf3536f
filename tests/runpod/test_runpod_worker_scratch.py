"""Nothing of a worker outlives it on disk: each worker's TMPDIR is a scratch directory the fleet removes when it
reaps the worker, however the worker ended; the emulator's own temp dir goes at stop()."""

from __future__ import annotations

import json
import os
import signal
import tempfile
from pathlib import Path

import pytest
from emulator_harness import API_KEY, wait_for

from goldgate.local.runpod import EmulatorConfig, RunPodEmulator


@pytest.fixture
def tmpdir_of_the_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR, for this process's emulator and the workers it starts, is a directory of the test's own."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def _exited_workers(logs: Path) -> list[str]:
    events = [json.loads(line) for line in (logs / "runpod-emulator.jsonl").read_text().splitlines()]
    return [e["data"]["worker"] for e in events if e["event"] == "worker.exited"]


def test_a_sigkilled_worker_leaves_no_temp_dir_once_reaped(make_stack, tmpdir_of_the_test: Path) -> None:
    stack = make_stack()
    ep = stack.endpoint(workers_max=1, idle_timeout_s=60)
    with stack.jobs(ep.id, retry=stack.no_retry) as jobs:
        done = stack.finished(jobs, jobs.run({"mkdtemp": True}).id)
    left = Path(done.output["tempdir"])
    assert left.is_dir() and left.is_relative_to(tmpdir_of_the_test)
    (worker, pid), = stack.emulator.fleet.pids().items()
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: worker not in stack.emulator.backend.workers, "the killed worker to be reaped")
    assert not left.exists(), f"the killed worker's temp dir {left} is still there"
    stack.emulator.stop()
    assert list(tmpdir_of_the_test.iterdir()) == []


def test_a_worker_the_sdk_ends_with_os_exit_leaves_no_temp_dir(make_stack, tmpdir_of_the_test: Path,
                                                               tmp_path: Path) -> None:
    stack = make_stack()
    stack.endpoint(workers_min=1, workers_max=1, env={"HANDLER": "unfit"})
    logs = tmp_path / "logs0"
    worker = wait_for(lambda: _exited_workers(logs), "a worker to fail its fitness check")[0]
    wait_for(lambda: worker not in stack.emulator.backend.workers, "the exited worker to be reaped")
    text = (logs / f"worker-{worker}.log").read_text()
    assert "this worker is unfit" in text
    [left] = [Path(line.removeprefix("left temp dir ")) for line in text.splitlines()
              if line.startswith("left temp dir ")]
    # The fleet's scratch dir is under the emulator's temp dir, here the test's; without it the worker would use
    # the system's TMPDIR, and what it left there would go unseen.
    assert left.is_relative_to(tmpdir_of_the_test), f"the worker's temp dir {left} is outside {tmpdir_of_the_test}"
    assert not left.exists(), f"the worker that exited left {left}"


def test_an_emulator_without_a_logs_dir_removes_its_temp_dir_on_stop(tmpdir_of_the_test: Path) -> None:
    emulator = RunPodEmulator(EmulatorConfig(api_key=API_KEY)).start()
    assert (emulator.logs_dir / "runpod-emulator.jsonl").is_file()
    emulator.stop()
    assert list(tmpdir_of_the_test.iterdir()) == []


def test_a_configured_logs_dir_is_kept_on_stop(tmp_path: Path, tmpdir_of_the_test: Path) -> None:
    logs = tmp_path / "logs"
    RunPodEmulator(EmulatorConfig(api_key=API_KEY, logs_dir=logs)).start().stop()
    assert (logs / "runpod-emulator.jsonl").is_file()
    assert list(tmpdir_of_the_test.iterdir()) == []


def test_workers_scratch_left_by_a_killed_run_is_cleared_on_start(tmp_path: Path) -> None:
    workers = tmp_path / "workers"
    (workers / "wk-of-a-killed-run" / "comfyui-emulator-out-x").mkdir(parents=True)
    (workers / "wk-of-a-killed-run" / "comfyui-emulator-out-x" / "image.png").write_bytes(b"png")
    with RunPodEmulator(EmulatorConfig(api_key=API_KEY, logs_dir=tmp_path / "logs", workers_dir=workers)):
        assert workers.is_dir() and list(workers.iterdir()) == []
