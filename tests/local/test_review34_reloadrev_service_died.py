"""`goldgate reload` of a stack whose service has just died (a crash the host had not yet seen when the reload was
asked): the reload's new service takes over, and the death is still said, by `service.exited` as the host says every
other. The reload replaced the dead service before the host's loop looked at it, and its crash left no line at all:
`goldgate logs` and the runbook's "service.exited repeats" check never saw it.

The host is held (SIGSTOP) while its service is killed and the reload's signal is sent, so it finds both at once, as
it does when they come within one turn of its loop; nothing here waits on a clock."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
from ci_policy import needs
from processes import wait_until
from stackfiles import stacks_file

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import client_tokens, image_store
from goldgate.local.platform import LocalPlatform, Reloaded
from goldgate.local.state import StackDir

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the test reads a held process's pending signals)")


def _pending(pid: int, signum: int) -> bool:
    """Whether `signum` waits, undelivered, for the (stopped) process `pid`: its ShdPnd mask in /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("ShdPnd:"):
            return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    return False


def _events(d: StackDir, event: str) -> list[dict[str, Any]]:
    lines = (d.logs_dir / "stackhost.jsonl").read_text(errors="replace").splitlines()
    return [e for e in map(json.loads, filter(None, lines)) if e.get("event") == event]


def test_a_service_that_died_as_the_reload_was_asked_is_said_and_the_new_one_serves(home: Path) -> None:
    platform = LocalPlatform(home, stacks_file(home))
    stack = "staging"
    d = StackDir(home, stack)
    d.pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up(stack, timeout_s=90)
    try:
        state = platform.require_running(stack)
        host, dead = state["pid"], state["service_pid"]
        token = client_tokens.add_client(d, "web")
        outcome: list[Reloaded | BaseException] = []

        def run() -> None:
            try:
                outcome.append(platform.reload(stack, timeout_s=90))
            except BaseException as exc:  # noqa: BLE001 -- said by the assertion below
                outcome.append(exc)

        os.kill(host, signal.SIGSTOP)
        waiter = threading.Thread(target=run)
        try:
            os.kill(dead, signal.SIGKILL)
            waiter.start()
            assert wait_until(lambda: _pending(host, signal.SIGUSR1), 30)
        finally:
            os.kill(host, signal.SIGCONT)
        waiter.join(120)
        assert len(outcome) == 1 and isinstance(outcome[0], Reloaded), outcome
        assert outcome[0].changed == ["secrets/clients/web (added)"] and outcome[0].service_pid != dead

        exited = _events(d, "service.exited")
        assert [e["data"]["code"] for e in exited] == [-signal.SIGKILL], exited
        now = platform.require_running(stack)
        assert now["pid"] == host and now["service_pid"] == outcome[0].service_pid
        with httpx.Client(base_url=now["api_url"], timeout=30) as api:
            assert api.get("/api/workflows", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        platform.down(stack)
