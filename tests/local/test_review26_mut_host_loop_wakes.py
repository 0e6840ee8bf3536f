"""The stack host's main loop sleeps until something happens (LOOP_BACKSTOP_S is only a backstop): `goldgate down`
(SIGTERM), a deploy (SIGHUP) and its service's death each wake it at once. A signal that set its event without
waking the loop, or a service exit nobody watched, was acted on only at the backstop: `down` and a crashed service's
restart each waited it out, and so did a `down` that came while the host was busy (a deploy in hand). Here the
backstop is an hour, so only a wake-up can end each wait. A real host object on stand-ins for its parts (no object
store, emulator or service is started: the "service" is a small process)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest
from serving import wait_until
from stackfiles import stacks_file

from goldgate.local import stackhost
from goldgate.local.stackhost import StackHost

# A generous bound on each wait, never reached when the loop is woken (the backstop is an hour here).
WAIT_S = 60.0
# A stand-in service: writes its port file (--port-file), as the service does once it serves, then runs until its
# stdin closes.
STAND_IN = ("import pathlib, sys; args = sys.argv[1:]; "
            "pathlib.Path(args[args.index('--port-file') + 1]).write_text('1\\n'); sys.stdin.read()")


def _stand_in_popen(started: list[subprocess.Popen]):
    def popen(argv: list[str], **_kwargs) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", STAND_IN, *argv], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        return proc
    return popen


def _until(predicate, what: str) -> None:
    wait_until(predicate, what, WAIT_S, "the host's loop was not woken")


def test_the_host_loop_wakes_for_down_a_deploy_and_its_services_death(home: Path, monkeypatch) -> None:
    if not hasattr(stackhost.os, "pidfd_open"):
        pytest.skip("no pidfd here: the host polls its service (LOOP_POLL_S)")
    monkeypatch.setattr(stackhost, "LOOP_BACKSTOP_S", 3600.0)
    handlers: dict[int, object] = {}
    monkeypatch.setattr(stackhost.signal, "signal", lambda signum, handler: handlers.__setitem__(signum, handler))
    started: list[subprocess.Popen] = []
    monkeypatch.setattr(stackhost, "subprocess", types.SimpleNamespace(
        Popen=_stand_in_popen(started), TimeoutExpired=subprocess.TimeoutExpired, DEVNULL=subprocess.DEVNULL,
        STDOUT=subprocess.STDOUT))
    monkeypatch.setattr(stackhost, "apply_sqlite", lambda *args: None)
    monkeypatch.setattr(stackhost, "code_record", lambda *args: {})
    host = StackHost("staging", home, stacks_file(home))
    ready, reloaded = threading.Event(), threading.Event()
    host.start_object_store = lambda: None  # type: ignore[method-assign]
    host.start_runpod = lambda: None  # type: ignore[method-assign]
    host.start_retention = lambda: None  # type: ignore[method-assign]
    host.service_config = lambda image: {"image": image}  # type: ignore[method-assign]
    host.write_state = lambda image, **extra: ready.set()  # type: ignore[method-assign]

    def reload() -> None:  # a deploy, and a `goldgate down` that comes while the host applies it
        reloaded.set()
        handlers[signal.SIGTERM]()
    host.reload = reload  # type: ignore[method-assign]
    sleeping = threading.Event()  # the loop has checked everything and is about to sleep
    loop_wait_s = host.loop_wait_s
    host.loop_wait_s = lambda: (sleeping.set(), loop_wait_s())[1]  # type: ignore[method-assign]
    ended: list[int] = []
    loop = threading.Thread(target=lambda: ended.append(host.run()), name="host-loop", daemon=True)
    loop.start()
    try:
        assert ready.wait(WAIT_S), "the host never got as far as serving"
        assert sleeping.wait(WAIT_S)
        first = host.service
        sleeping.clear()
        first.stdin.close()  # the service dies while the loop sleeps: the host restarts it
        _until(lambda: host.service is not first and len(started) == 2, "the dead service's restart")
        assert host.service.poll() is None
        _until(sleeping.is_set, "the loop's next sleep")

        handlers[signal.SIGHUP]()  # a deploy: `goldgate deploy` pins, then signals the host
        _until(reloaded.is_set, "the deploy's reload")
        loop.join(WAIT_S)  # the SIGTERM that came during the deploy ends the loop once the deploy is applied
        assert not loop.is_alive(), "the host's loop slept on after a SIGTERM that came while it was busy"
        assert ended == [0]
    finally:
        host.stopping.set()
        host.wake.set()
        loop.join(WAIT_S)
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)


def _host() -> types.SimpleNamespace:
    return types.SimpleNamespace(wake=threading.Event(), exits_watched=True, unwritten_state=None)


def test_a_host_that_cannot_watch_its_service_polls_it(monkeypatch) -> None:
    """Without pidfd (not Linux 5.3+), nothing wakes the loop when the service dies: it polls, as it always did."""
    def no_pidfd(pid: int) -> int:
        raise OSError(38, "Function not implemented")
    monkeypatch.setattr(stackhost.os, "pidfd_open", no_pidfd, raising=False)
    host = _host()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        StackHost.watch_exit(host, proc)  # type: ignore[arg-type]
    finally:
        proc.wait(30)
    assert host.exits_watched is False
    assert StackHost.loop_wait_s(host) == stackhost.LOOP_POLL_S  # type: ignore[arg-type]


def test_a_state_file_still_to_write_is_tried_again_within_seconds_not_at_the_backstop() -> None:
    host = _host()
    host.unwritten_state = {"image": None}
    assert StackHost.loop_wait_s(host) == 2.0  # type: ignore[arg-type]  # write_unwritten_state's every_s
