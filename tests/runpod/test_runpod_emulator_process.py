"""`python -m goldgate.local.runpod --config FILE`: the emulator as a background process for local stacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from emulator_harness import API_KEY, wait_for

from goldgate.errors import SpecError
from goldgate.local.runpod import config_from_mapping, load_config
from goldgate.runpod import ControlPlaneClient, DataPlaneClient, EndpointConfig

HERE = Path(__file__).parent


def _spawn(config: Path, ready: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "goldgate.local.runpod", "--config", str(config),
                             "--ready-file", str(ready)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_the_emulator_runs_as_a_process_and_stops_cleanly_on_sigterm(tmp_path) -> None:
    config = tmp_path / "runpod.json"
    config.write_text(json.dumps({"api_key": API_KEY, "logs_dir": str(tmp_path / "logs"),
                                  "launcher": "emulator_harness:sdk_launcher", "job_take_hold_s": 0.5,
                                  "faults": {"seed": 3}}))
    ready = tmp_path / "ready.json"
    proc = _spawn(config, ready)
    try:
        wait_for(ready.exists, "the ready file")
        urls = json.loads(ready.read_text())
        assert urls["base_url"].startswith("http://127.0.0.1:") and urls["pid"] == proc.pid
        with ControlPlaneClient(API_KEY, urls["api_base"]) as cp:
            ep = cp.create_endpoint(EndpointConfig(name="proc", image="img@sha256:" + "e" * 64,
                                                   gpu_pools=("ADA_24",), workers_max=1))
        with DataPlaneClient(API_KEY, ep.id, urls["endpoint_base"]) as jobs:
            job = jobs.run({"n": 1})
            done = wait_for(lambda: (s := jobs.status(job.id)).is_terminal and s, "the job")
            assert done.status == "COMPLETED"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert '"event":"runpod_emulator.ready"' in out and "Traceback" not in err
    assert list((tmp_path / "logs").glob("worker-*.log"))
    events = [json.loads(x) for x in (tmp_path / "logs" / "runpod-emulator.jsonl").read_text().splitlines()]
    pids = [e["data"]["pid"] for e in events if e["event"] == "worker.started"]
    assert pids  # and none of those workers (nor their process groups) is left running:
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


@pytest.mark.parametrize("content, words", [
    ("{not json", "not readable JSON"),
    ('{"api_key": "k", "colour": "blue"}', "colour"),
    ('{"api_key": "k", "faults": {"failed_rate": 2}}', "failed_rate"),
    ('{"api_key": "k", "host": "0.0.0.0"}', "loopback"),
    ('{"api_key": "k", "launcher": "nowhere"}', "launcher"),
])
def test_a_bad_config_exits_1_with_one_line_and_no_traceback(tmp_path, content, words) -> None:
    config = tmp_path / "runpod.json"
    config.write_text(content)
    proc = _spawn(config, tmp_path / "ready.json")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("state", [
    '{"endpoints": [{"id": "abc", "na',  # truncated mid-write
    '["not", "an", "object"]',
    '{"endpoints": [{"id": "abc", "name": "old-version"}]}',  # another version's shape: fields missing
    '{"endpoints": [{"id": "abc", "name": "x", "settings": {}, "created_at": "t", "version": "two", "releases": []}]}',
], ids=["truncated", "not-an-object", "other-version", "hand-edited"])
def test_an_unreadable_state_file_exits_1_naming_it_without_a_traceback(tmp_path, state) -> None:
    state_file = tmp_path / "runpod-state.json"
    state_file.write_text(state)
    config = tmp_path / "runpod.json"
    config.write_text(json.dumps({"api_key": API_KEY, "logs_dir": str(tmp_path / "logs"),
                                  "state_file": str(state_file)}))
    proc = _spawn(config, tmp_path / "ready.json")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert str(state_file) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert state_file.read_text() == state  # left for the operator to inspect, not overwritten


def test_a_missing_config_names_the_path(tmp_path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_config(tmp_path / "absent.json")


def test_config_values_are_type_checked() -> None:
    with pytest.raises(SpecError, match="rate_limit_requests must be an integer"):
        config_from_mapping({"rate_limit_requests": "many"})
    with pytest.raises(SpecError, match="webhook_statuses"):
        config_from_mapping({"webhook_statuses": ["DONE"]})
    cfg = config_from_mapping({"webhook_retry_delay_s": 2, "logs_dir": "/tmp/x", "faults": {"reorder": True}})
    assert cfg.webhook_retry_delay_s == 2.0 and cfg.faults.reorder and str(cfg.logs_dir) == "/tmp/x"
