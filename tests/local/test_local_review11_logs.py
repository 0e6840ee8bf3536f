"""Files of a local stack replaced by something that is not a file (a FIFO, a directory): a log, a file goldgate
writes, a saved result object. Each process that meets one answers with one line naming it (or, for a scratch name
of goldgate's own, replaces it), never hangs waiting for a reader or writer that will not come. And `down all`
stops every stack it can when one of them cannot be read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ci_policy import needs
from processes import processes_naming

from goldgate import spec as specs
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

pytestmark = needs(hasattr(os, "mkfifo"), "named pipes (os.mkfifo)")

REPO = Path(__file__).resolve().parents[2]
# How long a command may take before it is taken to hang: each answers in seconds, and a host blocked on a log
# is only given up on by `up` after its 120 s start timeout.
HANG_GUARD_S = 60


def _run(argv: list[str], what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, check=False, text=True,
                              timeout=HANG_GUARD_S, stdin=subprocess.DEVNULL, env={**os.environ, "GOLDGATE_HOME": ""})
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} hung (no answer in {HANG_GUARD_S} s)")


@pytest.mark.parametrize("name", ["stackhost.stderr.log", "stackhost.jsonl", "service.jsonl",
                                  "runpod-emulator.jsonl", "worker-0123456789abcd.log"])
def test_a_fifo_in_place_of_a_stack_log_is_one_line_from_up_not_a_hang(home: Path, name: str) -> None:
    d = StackDir(home, "prod")
    d.logs_dir.mkdir(parents=True)
    os.mkfifo(d.logs_dir / name)
    result = _run(["-m", "goldgate.cli", "up", "prod", "--home", str(home)], "`goldgate up prod`")
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("goldgate: error:")]
    assert len(errors) == 1, result.stderr
    assert str(d.logs_dir / name) in errors[0] and "FIFO" in errors[0] and "goldgate up prod" in errors[0], errors
    assert not d.state_file.exists(), "no host was started"
    assert (d.logs_dir / name).exists(), "the FIFO is left for its owner"


def test_a_directory_in_place_of_the_host_log_is_one_line_from_up(home: Path) -> None:
    d = StackDir(home, "prod")
    (d.logs_dir / "stackhost.jsonl").mkdir(parents=True)
    result = _run(["-m", "goldgate.cli", "up", "prod", "--home", str(home)], "`goldgate up prod`")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result
    assert f"{d.logs_dir / 'stackhost.jsonl'} is a directory" in result.stderr, result.stderr


def test_a_host_that_meets_a_fifo_service_log_says_so_in_its_state_and_exits(home: Path) -> None:
    # What a host meets when the log is replaced while it runs: it (re)starts the service after `up` looked.
    d = StackDir(home, "prod")
    d.logs_dir.mkdir(parents=True)
    os.mkfifo(d.logs_dir / "service.jsonl")
    result = _run(["-m", "goldgate.local.stackhost", "--stack", "prod", "--home", str(home)], "the stack host")
    assert result.returncode == 1, result
    state = json.loads(d.state_file.read_text())
    assert state["status"] == "failed", state
    assert state["error"].startswith(f"{d.logs_dir / 'service.jsonl'} is a named pipe (FIFO)"), state


def test_a_host_whose_own_log_is_a_fifo_says_so_in_its_state_and_exits(home: Path) -> None:
    d = StackDir(home, "prod")
    d.logs_dir.mkdir(parents=True)
    os.mkfifo(d.logs_dir / "stackhost.jsonl")
    result = _run(["-m", "goldgate.local.stackhost", "--stack", "prod", "--home", str(home)], "the stack host")
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    assert json.loads(d.state_file.read_text())["error"].startswith(f"{d.logs_dir / 'stackhost.jsonl'} is a named pipe (FIFO)")


def test_the_runpod_emulator_refuses_a_fifo_log_in_one_line(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    os.mkfifo(logs / "runpod-emulator.jsonl")
    config = tmp_path / "emulator.json"
    config.write_text(json.dumps({"logs_dir": str(logs), "workers_dir": str(tmp_path / "workers")}))
    result = _run(["-m", "goldgate.local.runpod", "--config", str(config)], "the RunPod emulator")
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("runpod emulator: error: "), result.stderr
    assert f"{logs / 'runpod-emulator.jsonl'} is a named pipe (FIFO)" in lines[0], lines


def test_a_fifo_among_the_saved_result_objects_is_skipped_and_the_stack_comes_up(home: Path) -> None:
    bucket = specs.load_local("prod").storage.bucket
    d = StackDir(home, "prod")
    saved = d.objects_dir / bucket
    saved.mkdir(parents=True)
    os.mkfifo(saved / f"{'0' * 64}.json")
    os.mkfifo(saved / f"{'1' * 64}.bin")
    (saved / f"{'1' * 64}.json").write_text(json.dumps({"key": "jobs/x/0.png", "metadata": {}}))
    try:
        result = _run(["-m", "goldgate.cli", "up", "prod", "--home", str(home)], "`goldgate up prod`")
        assert result.returncode == 0, result
        events = [json.loads(line) for line in (d.logs_dir / "stackhost.jsonl").read_text().splitlines()]
        skipped = [e["message"] for e in events if e["event"] == "object_store.unreadable"]
        assert len(skipped) == 2 and "FIFO" in skipped[0] and "FIFO" in skipped[1], skipped
    finally:
        _run(["-m", "goldgate.cli", "down", "prod", "--home", str(home)], "`goldgate down prod`")


def _up_and_down(home: Path) -> subprocess.CompletedProcess:
    try:
        return _run(["-m", "goldgate.cli", "up", "prod", "--home", str(home)], "`goldgate up prod`")
    finally:
        _run(["-m", "goldgate.cli", "down", "prod", "--home", str(home)], "`goldgate down prod`")


@pytest.mark.parametrize("name", [".write-probe", "state.json.tmp"])
def test_a_fifo_left_at_a_scratch_name_of_goldgate_is_replaced_and_the_stack_comes_up(home: Path,
                                                                                     name: str) -> None:
    d = StackDir(home, "prod")
    d.root.mkdir(parents=True)
    os.mkfifo(d.root / name)
    result = _up_and_down(home)
    assert result.returncode == 0, result
    assert "prod: up at http://127.0.0.1:" in result.stderr, result.stderr


def test_a_fifo_in_place_of_the_service_config_is_one_line_from_up_not_a_hang(home: Path) -> None:
    d = StackDir(home, "prod")
    d.root.mkdir(parents=True)
    os.mkfifo(d.root / "service.json")
    result = _up_and_down(home)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("goldgate: error:")]
    assert len(errors) == 1 and f"{d.root / 'service.json'} is a named pipe (FIFO)" in errors[0], result.stderr


def test_down_all_stops_the_other_stacks_when_one_cannot_be_read(home: Path) -> None:
    platform = LocalPlatform(home)
    staging = platform.up("staging")
    assert staging.running
    host = platform.host_pid("staging")
    prod = StackDir(home, "prod")
    prod.root.mkdir(parents=True)
    os.mkfifo(prod.state_file)  # `prod` sorts first: its failure used to end the loop
    try:
        result = _run(["-m", "goldgate.cli", "down", "all", "--home", str(home)], "`goldgate down all`")
        assert result.returncode == 1 and "Traceback" not in result.stderr, result
        assert host not in processes_naming(str(home)), "the staging host still runs"
        assert platform.host_pid("staging") is None and not platform.status("staging").running
        assert "down: staging" in result.stdout, result.stdout
        errors = [line for line in result.stderr.splitlines() if line.startswith("goldgate: error:")]
        assert len(errors) == 1 and f"prod: {prod.state_file} is a named pipe (FIFO)" in errors[0], result.stderr
    finally:
        platform.down("staging")
