"""An idle RunPod emulator's ticker sleeps until its next known work (a kept result's expiry) or a change the backend
notifies (a job, a retry, an endpoint's settings), IDLE_TICK_MAX_S at most. Here that backstop is an hour, so what
a missed wake-up or a wrong due time would hold up is held for an hour, and each wait below (a generous bound, not
a speed) fails: a retried job no worker takes, an endpoint raised to workers.min 1 with no worker, a result kept
past its retention or ttl, an emulator whose stop waits on its ticker. The due times themselves are checked on the
backend with a clock of the test's own."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from serving import wait_until

from goldgate.local.runpod import EmulatorConfig, RunPodEmulator
from goldgate.local.runpod import emulator as emulator_module
from goldgate.local.runpod.backend import RunPodBackend
from goldgate.runpod import ControlPlaneClient, DataPlaneClient, EndpointConfig, EndpointPatch

API_KEY = "rp_test_key_0123456789abcdef"
IMAGE = "local/worker@sha256:" + "c" * 64
WAIT_S = 60.0  # each wait's bound: never reached when the ticker is woken (its backstop is an hour here)


def _never(image_ref: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """A worker process that never calls the emulator: the test takes and finishes jobs in its place."""
    return [sys.executable, "-c", "import time; time.sleep(600)"], env


def _until(predicate, what: str) -> None:
    wait_until(predicate, what, WAIT_S, "the idle ticker was not woken")


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch):
    """start(**config): an emulator whose idle ticker's backstop is an hour, past its first tick, and an event set
    each time the ticker has looked for its next work and found none in hand (it then waits for it, holding the
    backend's lock until the wait begins)."""
    monkeypatch.setattr(emulator_module, "IDLE_TICK_MAX_S", 3600.0)
    started: list[RunPodEmulator] = []

    def start(**config) -> RunPodEmulator:
        emu = RunPodEmulator(EmulatorConfig(api_key=API_KEY, tick_s=0.01, logs_dir=tmp_path / "logs",
                                            workers_dir=tmp_path / "w", **config), launcher=_never)
        looked = threading.Event()
        idle_until = emu.backend.idle_until

        def watched() -> float | None:
            until = idle_until()
            if until is not None:
                looked.set()
            return until
        emu.backend.idle_until = watched  # type: ignore[method-assign]
        emu.looked_idle = looked  # type: ignore[attr-defined]
        swept, prune_logs = threading.Event(), emu.fleet.prune_logs

        def first_sweep() -> None:  # the first tick's (at start): its look before it waited only a tick
            looked.clear()
            swept.set()
            prune_logs()
        emu.fleet.prune_logs = first_sweep  # type: ignore[method-assign]
        started.append(emu.start())
        assert swept.wait(WAIT_S), "the emulator's ticker never ticked"
        return emu

    yield start
    for emu in started:
        emu.stop()


def _going_idle(emu: RunPodEmulator) -> None:
    """Before what leaves the emulator idle: `_asleep` then waits for the ticker's look after it."""
    emu.looked_idle.clear()  # type: ignore[attr-defined]


def _asleep(emu: RunPodEmulator) -> None:
    """Wait until the ticker sleeps idle: it found no work in hand, and its wait has released the backend's lock."""
    assert emu.looked_idle.wait(WAIT_S), "the ticker never went idle"  # type: ignore[attr-defined]
    with emu.backend.changed:
        pass


def _endpoint(emu: RunPodEmulator, **config) -> str:
    with ControlPlaneClient(api_key=API_KEY, base_url=emu.base_url) as control:
        return control.create_endpoint(EndpointConfig(**{
            "name": "idle", "image": IMAGE, "gpu_pools": ("ADA_24",), "workers_max": 1, "idle_timeout_s": 1,
            **config})).id


def test_stopping_an_idle_emulator_ends_its_ticker_at_once(emulator) -> None:
    emu = emulator()
    _asleep(emu)
    ticker = emu._threads[1]
    alive: list[bool] = []
    stop_all = emu.fleet.stop_all

    def stopping_workers(timeout_s: float) -> None:
        alive.append(ticker.is_alive())
        stop_all(timeout_s)
    emu.fleet.stop_all = stopping_workers  # type: ignore[method-assign]
    emu.stop()  # waits for the ticker (up to 5 s: every `goldgate down` waited that out), then stops the workers
    assert alive == [False], "stop() went on to the workers with the idle ticker still asleep: it was not woken"


def test_a_job_retried_while_the_emulator_idles_gets_a_worker_at_once(emulator) -> None:
    emu = emulator()
    ep = _endpoint(emu)
    jobs = DataPlaneClient(API_KEY, ep, emu.endpoint_base)
    job = jobs.run({"prompt": "x"})
    _until(lambda: emu.fleet.pids(), "a worker for the job")
    (worker,) = emu.fleet.pids()
    assert [j["id"] for j in emu.backend.take(ep, worker, 1, 0)] == [job.id]  # the test is the worker
    _going_idle(emu)  # not before its worker has gone: the ticker has work in hand until then
    emu.backend.done(ep, worker, job.id, {"error": "boom"})
    _until(lambda: not emu.fleet.pids() and not emu.backend.workers, "the idle worker's stop")
    _asleep(emu)
    assert jobs.retry(job.id).status == "IN_QUEUE"
    _until(lambda: emu.fleet.pids(), "a worker for the retried job")


def test_an_endpoint_raised_to_workers_min_1_while_idle_gets_its_worker_at_once(emulator) -> None:
    emu = emulator()
    _going_idle(emu)
    ep = _endpoint(emu)
    _asleep(emu)
    assert not emu.fleet.pids()
    with ControlPlaneClient(api_key=API_KEY, base_url=emu.base_url) as control:
        control.update_endpoint(ep, EndpointPatch(workers_min=1))
    _until(lambda: emu.fleet.pids(), "the worker workers.min keeps up")


def test_a_finished_jobs_result_is_gone_at_its_retention_while_the_emulator_idles(emulator) -> None:
    # No GPU capacity: the job's worker is held, never started, and let go once the job is cancelled.
    emu = emulator(result_retention_s=1.0, no_gpu_capacity=True)
    ep = _endpoint(emu)
    jobs = DataPlaneClient(API_KEY, ep, emu.endpoint_base)
    job = jobs.run({"prompt": "x"})
    assert jobs.cancel(job.id).status == "CANCELLED"
    _until(lambda: job.id not in emu.backend.jobs, "the cancelled job's result to expire")


# ---- the due times, on the backend with the test's clock ------------------------------------------------------

CREATE = {"name": "e", "type": "QUEUE", "image": IMAGE, "gpu": {"pools": ["ADA_24"]},
          "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}, "workers": {"min": 0, "max": 1}}


def _backend(**config) -> tuple[RunPodBackend, list[float], str]:
    now = [1000.0]
    backend = RunPodBackend(EmulatorConfig(api_key="k", **config), clock=lambda: now[0])
    return backend, now, backend.create_endpoint(CREATE).id


def _finished(backend: RunPodBackend, endpoint_id: str, body: dict, *, sync: bool = False) -> None:
    """A job that was sent and cancelled (a terminal job, its result kept), with no worker left."""
    job = backend.submit(endpoint_id, {"input": {"prompt": "x"}, **body}, 10, sync=sync)
    backend.cancel(endpoint_id, job.id)


def test_an_idle_backends_next_work_is_the_first_kept_results_expiry() -> None:
    backend, now, ep = _backend(result_retention_s=1800.0, sync_result_retention_s=60.0, min_ttl_ms=1000)
    assert backend.idle_until() == float("inf")  # nothing kept: only a change wakes it
    _finished(backend, ep, {})
    assert backend.idle_until() == 1000.0 + 1800.0  # its retention
    now[0] = 1010.0
    _finished(backend, ep, {}, sync=True)
    assert backend.idle_until() == 1010.0 + 60.0  # a /runsync result is kept 60 s
    _finished(backend, ep, {"policy": {"ttl": 5000}})
    assert backend.idle_until() == 1010.0 + 5.0  # its ttl comes before its retention


def test_an_idle_backend_has_work_in_hand_while_a_job_is_unfinished_or_a_worker_is_there_or_kept_up() -> None:
    backend, _now, ep = _backend()
    job = backend.submit(ep, {"input": {"prompt": "x"}}, 10)
    assert backend.idle_until() is None  # queued: ticked every tick_s
    backend.plan()  # its worker is allocated (its process not started yet)
    backend.cancel(ep, job.id)
    assert backend.workers and backend.idle_until() is None  # a worker to supervise: its idle timeout, its stop

    backend, _now, ep = _backend()
    assert backend.idle_until() is not None
    backend.update_endpoint(ep, {"workers": {"min": 1}})
    assert backend.idle_until() is None  # the worker workers.min keeps up is started and supervised by the tick
