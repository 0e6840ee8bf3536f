"""The service's uvicorn main loop sleeps until told to stop (QuietServer) in the process a local stack runs, the one
`serve` starts, not only in the in-process server the tests start: that process served every stack all day, and
woke 10 times a second to see whether it should stop. A SIGTERM (what `goldgate down` sends it) still ends it at
once. A stop that comes after its loop has closed (a second stop, a loop that died) is quiet, as uvicorn's is."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

import pytest
import uvicorn
from serving import idle_service_config

from service import local_server
from service.sockets import listening_socket

WATCH_S = 1.0  # uvicorn's own loop ticks 10 times in it
WAIT_S = 60.0  # a bound on waits for what must happen, never reached when it does


def _recording(calls: list, fn):
    def wrapper(*args, **kwargs):
        calls.append(args[0])
        return fn(*args, **kwargs)
    return wrapper


def test_the_stack_service_process_sleeps_while_idle_and_ends_on_sigterm(tmp_path: Path, monkeypatch) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("serve() handles SIGTERM through its event loop, which only the main thread's can")
    ticks: list = []
    servers: list = []
    monkeypatch.setattr(uvicorn.Server, "on_tick", _recording(ticks, uvicorn.Server.on_tick))
    monkeypatch.setattr(uvicorn.Server, "startup", _recording(servers, uvicorn.Server.startup))
    port_file = tmp_path / "service.port"
    seen: dict = {}
    served = threading.Event()

    def drive() -> None:
        pause = threading.Event()
        for _ in range(int(WAIT_S / 0.05)):
            if port_file.exists() or served.is_set():
                break
            pause.wait(0.05)
        if port_file.exists():
            pause.wait(WATCH_S)  # nothing to await: an idle service is watched for a while
            seen["ticks"] = sum(1 for s in ticks if s is servers[0])
            os.kill(os.getpid(), signal.SIGTERM)  # `goldgate down`, as the stack host passes it on
        if not served.wait(WAIT_S) and servers:  # not ended: end it, so that the test fails rather than hangs
            seen["stuck"] = True
            server = servers[0]
            server.force_exit = server.should_exit = True
            if getattr(server, "_exit_wakeup", None) is not None:
                loop, event = server._exit_wakeup
                loop.call_soon_threadsafe(event.set)

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    driver = threading.Thread(target=drive, name="drive-service", daemon=True)
    driver.start()
    try:
        local_server.serve(idle_service_config(tmp_path), str(port_file), log_sink=lambda line: None)
    finally:
        served.set()
        driver.join(WAIT_S)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert "ticks" in seen, "the service never wrote its port file"
    assert not seen.get("stuck"), "SIGTERM did not end the service"
    assert seen["ticks"] <= 2, f"an idle service process's main loop woke {seen['ticks']} times in {WATCH_S:g} s"


async def _app(scope, receive, send) -> None:  # an ASGI app with nothing to serve
    raise RuntimeError("no requests in this test")


def test_a_stop_after_the_servers_loop_has_closed_is_quiet() -> None:
    server = local_server.QuietServer(uvicorn.Config(_app, lifespan="off", log_config=None, date_header=False))
    sock = listening_socket("127.0.0.1", 0)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    for _ in range(int(WAIT_S / 0.01)):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.01)
    assert server.started
    server.should_exit = True
    thread.join(WAIT_S)
    assert not thread.is_alive(), "should_exit did not end the server's loop"
    server.should_exit = True  # a second stop: its loop is closed, nothing is left to wake

