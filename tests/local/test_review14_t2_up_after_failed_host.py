"""`goldgate up` of a STAGING stack with no pin while its last host has failed to start but not yet exited (it
wrote state "failed" and is shutting down). Before, `up` took that host for a running one, pinned nothing, and
then (once the host had ended) started a new host on no image. Now the failed host counts as none: the working
tree's image is pinned and the stack comes up on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from goldgate.commands.local import WORKER_SOURCE, ensure_up
from goldgate.errors import StateError
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir, write_json_atomic

STACK = "staging"


def _failed_host(home: Path) -> subprocess.Popen:
    """A process the platform recognises as the stack's host (by its command line), alive, whose state says it failed."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "goldgate.local.stackhost",
                             "--stack", STACK, "--home", str(home)])
    d = StackDir(home, STACK)
    d.root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(d.state_file, {"status": "failed", "pid": proc.pid, "error": "preflight: no models"})
    return proc


def test_up_while_a_failed_host_is_still_exiting_pins_the_working_tree_image(home: Path) -> None:
    platform = LocalPlatform(home)
    d = StackDir(home, STACK)
    proc = _failed_host(home)
    try:
        assert platform.host_pid(STACK) == proc.pid      # the failed host is alive
        status = ensure_up(platform, STACK)
        expected = image_store.build_local_image(WORKER_SOURCE, home)
        assert d.pinned_image() == expected
        assert status.running and status.image == expected, status
    finally:
        proc.kill()
        proc.wait()
        platform.down(STACK)


def test_up_while_a_host_is_starting_pins_nothing(home: Path) -> None:
    # A live host whose state is not "failed" (starting, or ready with its pin moved aside) may serve an image:
    # the working tree's is not pinned under it. `up` says another one is starting.
    platform = LocalPlatform(home)
    d = StackDir(home, STACK)
    proc = _failed_host(home)
    write_json_atomic(d.state_file, {"status": "starting", "pid": proc.pid})
    d.lock_file.write_text(str(proc.pid))
    try:
        with pytest.raises(StateError, match=f"stack {STACK} is already starting \\(host pid {proc.pid}\\)"):
            ensure_up(platform, STACK)
        assert d.pinned_image() is None
    finally:
        proc.kill()
        proc.wait()
