"""A local stack that sits idle costs no CPU: its RunPod emulator, its stack host and its service sleep until something
happens, instead of waking 10 to 20 times a second each for as long as the stack runs (a laptop paid it all day).
Each test watches an idle part for a while and counts its wake-ups; waking is still prompt when work comes."""

from __future__ import annotations

import socketserver
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest
import uvicorn
from serving import idle_service_config

from goldgate.local import stackhost
from goldgate.local.comfyui import ComfyUIEmulator
from goldgate.local.runpod import EmulatorConfig, RunPodEmulator
from goldgate.local.runpod import emulator as emulator_module
from goldgate.local.runpod.server import RunPodHTTPServer
from goldgate.runpod import ControlPlaneClient, DataPlaneClient, EndpointConfig
from service.local_server import start_in_thread

API_KEY = "rp_test_key_0123456789abcdef"
WATCH_S = 1.0  # how long an idle part is watched: the old loops woke 10 to 100 times in it


def _idle_for(seconds: float) -> None:
    """Let an idle part sit: nothing happens in it that could be awaited, which is the point."""
    threading.Event().wait(seconds)


def _counting(calls: list, fn):
    """`fn`, recording the object each call is made on (its first argument): a method patched on a class counts
    every instance in this process (another test file's server still running in this worker), so each test counts
    only its own."""
    def wrapper(*args, **kwargs):
        calls.append(args[0] if args else None)
        return fn(*args, **kwargs)
    return wrapper


def _never(image_ref: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """A worker process that never registers: the test looks only at whether the fleet started one."""
    return [sys.executable, "-c", "import time; time.sleep(600)"], env


def test_an_idle_runpod_emulator_neither_ticks_nor_polls_its_socket(monkeypatch) -> None:
    # 100 ticks a second while it has work (tick_s), to make the old every-tick_s loop plain to see.
    served: list = []
    monkeypatch.setattr(RunPodHTTPServer, "service_actions", _counting(served, RunPodHTTPServer.service_actions))
    with RunPodEmulator(EmulatorConfig(api_key=API_KEY, tick_s=0.01)) as emu:
        ticks: list = []
        emu.backend.expire = _counting(ticks, emu.backend.expire)  # type: ignore[method-assign]
        _idle_for(WATCH_S)
        idle_ticks, idle_polls = len(ticks), sum(1 for s in served if s is emu._server)
    assert idle_ticks <= 3 and idle_polls <= 1, (
        f"in {WATCH_S:g} s an idle emulator ticked {idle_ticks} times and its server, with no client, woke "
        f"{idle_polls} times")


def test_an_idle_comfyui_emulator_in_a_worker_does_not_poll_its_socket(monkeypatch, tmp_path) -> None:
    woke: list = []
    monkeypatch.setattr(socketserver.BaseServer, "service_actions", lambda self: woke.append(self))
    (tmp_path / "models").mkdir()
    emulator = ComfyUIEmulator(tmp_path / "models").start()
    try:
        assert emulator.wait_listening(30)
        _idle_for(WATCH_S)
    finally:
        emulator.stop()
    mine = sum(1 for s in woke if s is emulator._server)
    # None at all: socketserver's own loop (the server's before the mixin) wakes every 0.5 s, once or twice in WATCH_S.
    assert mine == 0, f"an idle ComfyUI emulator's server woke {mine} times in {WATCH_S:g} s with no client"
    assert emulator._thread is not None and not emulator._thread.is_alive()


def test_an_idle_emulator_still_starts_a_worker_at_once_for_a_new_endpoint_and_a_new_job(monkeypatch, tmp_path) -> None:
    # Only a notification can wake the idle ticker now: a missed one would hold the work for an hour.
    monkeypatch.setattr(emulator_module, "IDLE_TICK_MAX_S", 3600.0, raising=False)
    config = EmulatorConfig(api_key=API_KEY, tick_s=0.01, logs_dir=tmp_path / "logs", workers_dir=tmp_path / "w")
    with RunPodEmulator(config, launcher=_never) as emu:
        _idle_for(0.2)  # past its first ticks: the ticker sleeps
        control = ControlPlaneClient(api_key=API_KEY, base_url=emu.base_url)
        with control:
            kept = control.create_endpoint(EndpointConfig(
                name="kept-up", image="local/worker@sha256:" + "a" * 64, gpu_pools=("ADA_24",), workers_min=1,
                workers_max=1, idle_timeout_s=5))
            assert _wait(lambda: emu.fleet.pids()), "no worker started for an endpoint with workers.min 1"
            control.delete_endpoint(kept.id)
            assert _wait(lambda: not emu.fleet.pids() and not emu.backend.workers), "the deleted endpoint's worker"
            _idle_for(0.2)
            ep = control.create_endpoint(EndpointConfig(
                name="on-demand", image="local/worker@sha256:" + "b" * 64, gpu_pools=("ADA_24",), workers_max=1,
                idle_timeout_s=5))
            _idle_for(0.2)
            assert not emu.fleet.pids()
            DataPlaneClient(API_KEY, ep.id, emu.endpoint_base).run({"prompt": "x"})
            assert _wait(lambda: emu.fleet.pids()), "no worker started for a job sent to an idle emulator"


def _wait(predicate, timeout_s: float = 60.0) -> bool:
    """Wait for predicate() (a wait, not a speed bound: generous; a missed wake-up holds the work for an hour)."""
    done = threading.Event()
    for _ in range(int(timeout_s / 0.05)):
        if predicate():
            return True
        done.wait(0.05)
    return bool(predicate())


def test_an_idle_service_does_not_tick_and_stops_at_once_when_told(monkeypatch, tmp_path) -> None:
    ticks: list = []
    monkeypatch.setattr(uvicorn.Server, "on_tick", _counting(ticks, uvicorn.Server.on_tick))
    config = idle_service_config(tmp_path)
    server = start_in_thread(config, log_sink=lambda line: None)
    try:
        _idle_for(WATCH_S)
        idle_ticks = sum(1 for s in ticks if s is server._server)
    finally:
        server.stop()  # should_exit from this thread: the server's loop wakes for it (stop waits up to 15 s)
    assert idle_ticks <= 2, f"an idle service's main loop woke {idle_ticks} times in {WATCH_S:g} s"
    assert f"service-{server.port}" not in [t.name for t in threading.enumerate()]


def test_the_stack_host_is_woken_by_its_service_ending_not_by_a_poll() -> None:
    host = SimpleNamespace(wake=threading.Event(), exits_watched=True, unwritten_state=None)
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        stackhost.StackHost.watch_exit(host, proc)  # type: ignore[arg-type]
        if not host.exits_watched:
            pytest.skip("no pidfd here: the host polls its service (LOOP_POLL_S)")
        assert stackhost.StackHost.loop_wait_s(host) == stackhost.LOOP_BACKSTOP_S  # type: ignore[arg-type]
        assert not host.wake.is_set()
        proc.stdin.close()  # the "service" ends
        assert host.wake.wait(60), "the host's loop was not woken when its service ended"
        assert proc.poll() is None or proc.returncode == 0  # not reaped by the watcher: the loop's poll() sees it
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
