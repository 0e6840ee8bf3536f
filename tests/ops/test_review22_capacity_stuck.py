"""`goldgate stuck` says why jobs sit IN_QUEUE on RunPod, from one read of the endpoint's max workers and
/health: no GPU capacity in the endpoint's pools (workers throttled), workers that fail at start (unhealthy),
max workers 0, or a busy endpoint. Before, it listed the jobs and their recover lines only, and the cloud
checklist showed /health's counters raw: an operator whose jobs waited for a GPU recovered them one by one, or
read `throttled=1` without knowing what to do.

The local stack's RunPod is the emulator, with its test switches for the two RunPod states (REST v2's
WorkerStatus: THROTTLED "waiting on compute capacity", UNHEALTHY "failing health checks")."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ci_policy import needs
from test_review16_stuck_cli import MIN, STAGING, _db, _job

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.runpod import EmulatorConfig, RunPodEmulator
from goldgate.local.state import StackDir
from goldgate.ops import cloud_facts, stuck
from goldgate.runpod import ControlPlaneClient, DataPlaneClient, EndpointConfig
from goldgate.runpod.jobs import Health

API_KEY = "rp_capacity_key_0123456789abcdef"
SDK_WORKER = Path(__file__).parents[1] / "runpod" / "sdk_worker.py"  # the RunPod tests' worker image


def _sdk_launcher(image_ref: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    return [sys.executable, str(SDK_WORKER)], {**env, "WORKER_IMAGE": image_ref}


def _wait(predicate: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s  # a bound on a hang, not a timed assertion
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)
    return value


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """STAGING's database with one job queued for 30 minutes (stuck: older than the 10 min timeout)."""
    home = tmp_path / "home"
    _db(LocalPlatform(home).db_path("staging"), [_job("c" * 32, "queued", 30 * MIN, time.time())])
    return home


@pytest.fixture
def runpod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., tuple[Any, str]]]:
    """A RunPod emulator standing in for the running STAGING stack's own: the command finds it as it finds the
    stack's (its state's bases and endpoint id, and the stack's RunPod key)."""
    started: list[RunPodEmulator] = []

    def start(workers_max: int = 1, **switches: Any) -> tuple[RunPodEmulator, str]:
        config = EmulatorConfig(api_key=API_KEY, logs_dir=tmp_path / f"rp{len(started)}", job_take_hold_s=0.5,
                                ping_interval_ms=1000, worker_stop_grace_s=3.0, **switches)
        emu = RunPodEmulator(config, launcher=_sdk_launcher).start()
        started.append(emu)
        with ControlPlaneClient(API_KEY, emu.api_base) as control:
            ep = control.create_endpoint(EndpointConfig(
                name="goldgate-staging", image="local/worker@sha256:" + "a" * 64, gpu_pools=("ADA_24",),
                workers_max=workers_max, idle_timeout_s=2))
        state = {"runpod_api_base": emu.api_base, "runpod_endpoint_base": emu.endpoint_base,
                 "endpoint_id": ep.id}
        monkeypatch.setattr(LocalPlatform, "require_running", lambda self, stack: state)
        monkeypatch.setattr(LocalPlatform, "runpod_api_key", lambda self, stack: API_KEY)
        return emu, ep.id

    yield start
    for emu in started:
        for pid in emu.fleet.pids().values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        emu.stop()


def _stuck(home: Path, capsys: pytest.CaptureFixture, *extra: str) -> tuple[str, dict[str, Any]]:
    assert main(["stuck", "staging", "--home", str(home), *extra]) == 1  # the job is listed either way
    text = capsys.readouterr().out
    assert main(["stuck", "staging", "--home", str(home), "--json", *extra]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["jobs"][0]["id"] == "c" * 32  # the list and its recover lines stand
    assert "goldgate recover " + "c" * 32 in text
    return text, answer


def _plane(emu: RunPodEmulator, endpoint_id: str) -> DataPlaneClient:
    return DataPlaneClient(API_KEY, endpoint_id, emu.endpoint_base)


def _one_job_held(runpod: Any, switch: str, counter: str) -> str:
    """An endpoint whose new workers a test switch holds (`switch`), with one job queued and a worker counted
    under `counter`; its id."""
    emu, endpoint_id = runpod(**{switch: True})
    with _plane(emu, endpoint_id) as plane:
        plane.run({"echo": "waits"})
        _wait(lambda: getattr(plane.health(), counter), f"a {counter} worker")
    return endpoint_id


def test_no_gpu_capacity_names_the_pools_and_what_to_do(home, runpod, capsys):
    endpoint_id = _one_job_held(runpod, "no_gpu_capacity", "throttled")
    text, answer = _stuck(home, capsys)
    diagnosis = answer["queue_diagnosis"]
    assert diagnosis["cause"] == "no_gpu_capacity", diagnosis
    assert (diagnosis["endpoint_id"], diagnosis["workers_max"]) == (endpoint_id, 1)
    assert diagnosis["health"]["workers"]["throttled"] == 1 and diagnosis["health"]["jobs"]["inQueue"] == 1
    assert ("why jobs wait (RunPod): 1 job IN_QUEUE, no worker up and 1 throttled: no GPU free in the "
            "endpoint's pools (ADA_24)") in text
    assert "add pools to endpoint.gpu_pools in stacks/local.yaml" in text


def test_workers_failing_at_start_say_where_to_look(home, runpod, capsys):
    _one_job_held(runpod, "workers_fail_at_start", "unhealthy")
    text, answer = _stuck(home, capsys)
    assert answer["queue_diagnosis"]["cause"] == "workers_unhealthy"
    assert "1 worker unhealthy and 0 up: workers fail at start" in text
    assert "`goldgate doctor --stack staging`" in text and "goldgate status staging" in text


def test_a_busy_endpoint_is_not_mistaken_for_a_fault(home, runpod, capsys, tmp_path):
    emu, endpoint_id = runpod(workers_max=1)
    gate = tmp_path / "gate"
    gate.mkdir()
    with _plane(emu, endpoint_id) as plane:
        plane.run({"hold": str(gate)})  # runs until the test creates gate/release
        _wait(lambda: plane.health().worker_count("running"), "a running worker", timeout_s=120)
        plane.run({"echo": "next"})
        try:
            text, answer = _stuck(home, capsys)
        finally:
            (gate / "release").touch()
    assert answer["queue_diagnosis"]["cause"] == "busy", answer["queue_diagnosis"]
    assert "1 job IN_QUEUE behind 1 running, 0 idle and 0 initializing workers (max workers 1)" in text
    assert "raise endpoint.workers_max in stacks/local.yaml" in text
    assert "throttled (" not in text  # nothing about capacity or failing workers


def test_a_runpod_that_does_not_answer_is_a_note_and_the_list_stands(home, monkeypatch, capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v2"
    state = {"runpod_api_base": base, "runpod_endpoint_base": base, "endpoint_id": "ep0gone"}
    monkeypatch.setattr(LocalPlatform, "require_running", lambda self, stack: state)
    monkeypatch.setattr(LocalPlatform, "runpod_api_key", lambda self, stack: API_KEY)
    text, answer = _stuck(home, capsys)
    diagnosis = answer["queue_diagnosis"]
    assert diagnosis["cause"] == "unreachable" and diagnosis["error"], diagnosis
    assert "why jobs wait (RunPod): /health not read (" in text
    assert API_KEY not in text and API_KEY not in json.dumps(answer)


def test_a_stack_that_is_down_says_so_and_no_runpod_skips_the_read(home, runpod, capsys):
    text, answer = _stuck(home, capsys)  # no host: the stack is down
    assert answer["queue_diagnosis"]["cause"] == "not_read"
    assert "stack staging is down, and its local RunPod's queue went with it" in text
    runpod(no_gpu_capacity=True)  # up now, but the operator asked for no read
    text, answer = _stuck(home, capsys, "--no-runpod")
    assert answer["queue_diagnosis"] == {"cause": "not_read", "lines": [stuck.NOT_ASKED], "endpoint_id": None,
                                         "workers_max": None, "health": None, "error": None}


@needs(Path("/proc/self").is_dir(), "/proc (the stack's processes are found through it)")
def test_a_running_local_stack_is_read_with_its_own_runpod_key(tmp_path, capsys):
    platform = LocalPlatform(tmp_path / "home")
    StackDir(platform.home, "staging").pin(image_store.build_local_image(WORKER_SOURCE, platform.home),
                                           reason="test")
    platform.up("staging", timeout_s=90)
    try:
        endpoint_id = platform.status("staging").endpoint_id
        assert main(["stuck", "staging", "--home", str(platform.home), "--json"]) == 0  # no job at all
        diagnosis = json.loads(capsys.readouterr().out)["queue_diagnosis"]
    finally:
        platform.down("staging")
    assert diagnosis["cause"] == "none_queued", diagnosis
    assert (diagnosis["endpoint_id"], diagnosis["workers_max"]) == (endpoint_id, STAGING.endpoint.workers_max)
    assert diagnosis["health"]["jobs"]["inQueue"] == 0 and "throttled" in diagnosis["health"]["workers"]


def test_the_cloud_form_reads_the_stacks_runpod_key_or_says_how_to_get_it(runpod, monkeypatch):
    from goldgate.commands.ops import _cloud_diagnosis

    emu, endpoint_id = runpod(no_gpu_capacity=True)  # its endpoint is named as the cloud stack's
    with _plane(emu, endpoint_id) as plane:
        plane.run({"echo": "waits"})
        _wait(lambda: plane.health().throttled, "a throttled worker")
    spec = specs.load_pulumi("staging")
    assert spec.cloud is not None and spec.endpoint.name == "goldgate-staging"
    spec = dataclasses.replace(spec, cloud=dataclasses.replace(spec.cloud, runpod_api_base=emu.api_base,
                                                                 runpod_endpoint_base=emu.endpoint_base))
    args = argparse.Namespace(no_runpod=False)
    for name in ("RUNPOD_API_KEY", "RUNPOD_API_KEY_STAGING", "CLOUDFLARE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "cf-token-the-stuck-command-already-checked")
    missing = _cloud_diagnosis(args, spec)
    assert missing.cause == "not_read"
    assert "set RUNPOD_API_KEY (or RUNPOD_API_KEY_STAGING)" in missing.lines[0]
    monkeypatch.setenv("RUNPOD_API_KEY_STAGING", API_KEY)
    read = _cloud_diagnosis(args, spec)
    assert (read.cause, read.endpoint_id, read.workers_max) == ("no_gpu_capacity", endpoint_id, 1)
    assert "add pools to endpoint.gpu_pools in stacks/Pulumi.staging.yaml and apply it (`pulumi up --stack " \
           "staging`)" in read.lines[1]


def _health(queued: int = 0, in_progress: int = 0, **workers: int) -> Health:
    counts = {"idle": 0, "initializing": 0, "running": 0, "throttled": 0, "unhealthy": 0, **workers}
    jobs = {"completed": 3, "failed": 0, "inProgress": in_progress, "inQueue": queued, "retried": 0}
    return Health(jobs=jobs, workers=counts)


def test_max_workers_0_is_named_before_anything_else() -> None:
    cause, lines = stuck.diagnose(_health(queued=2, throttled=1), workers_max=0, gpu_pools=("ADA_24",),
                                  stack="prod", target="cloud")
    assert cause == "max_workers_zero"
    assert "max workers is 0, so RunPod starts no worker and 2 jobs IN_QUEUE wait" in lines[0]
    assert "`pulumi up --refresh --stack prod`" in lines[0]


def test_the_cloud_checklist_note_interprets_the_counters() -> None:
    state = cloud_facts.EndpointState(
        stack="prod", role="prod", endpoint_id="ep1", name="goldgate-prod", image=None, pinned=None,
        workflow_version=STAGING.workflow_version, network_volumes=(), workers_max=3, declared_workers_max=3,
        release_version=1, rollout_in_progress=False, percent_on_latest=100, workers_total=2, stale_workers=0,
        health={"jobs": dict(_health(queued=4).jobs), "workers": dict(_health(throttled=2).workers)})
    spec = STAGING  # any spec: its pools and name go into the note
    notes = [n for n in cloud_facts.endpoint_notes(state, spec) if "/health" in n]
    assert len(notes) == 1, notes
    assert "4 jobs IN_QUEUE, no worker up and 2 throttled: no GPU free in the endpoint's pools (ADA_24)" \
        in notes[0]
    assert "inQueue=" not in notes[0] and "throttled=" not in notes[0]
