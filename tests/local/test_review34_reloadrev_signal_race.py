"""`goldgate reload` when a reload is already in hand as its signal comes (a SIGUSR1 sent by hand a moment before):
the host finishes that one, on the files as they were before the operator's edit, then starts another for the new
signal. The command took the first answer it saw, so a revoked client read "no secret file changed" (the revocation
came a moment later, unannounced) and an edit the service refused read as applied. It now waits for the reload that
began after its own signal.

The stack's host is stood in for by a process that answers the signal as a host with a reload in hand does (the race
is not made on demand with a real host): it writes the in-hand reload's record first, and the command's own only
once the test says so, so the command is seen to wait past the first."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from ci_policy import needs
from processes import wait_until
from stackfiles import stacks_file

from goldgate.local.platform import LocalPlatform, Reloaded, reload_answered
from goldgate.local.state import StackDir
from goldgate.migrations import MIGRATIONS_DIR, apply_sqlite

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the platform tells a stack's host by its command line)")

# A host with a reload in hand: on the signal, that reload's record (it began before the signal and found nothing
# changed), then, once `go` exists, the record of the reload the signal asked for (it found the revocation).
_HOST = textwrap.dedent("""
    import json, os, signal, sys, threading, time
    from pathlib import Path
    root = Path(sys.argv[1])
    state, armed, go = root / "state.json", root / "armed", root / "go"
    began_before = time.monotonic()
    asked = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: asked.set())
    def write(reload):
        base = {"status": "ready", "pid": os.getpid(), "service_pid": os.getpid(), "reload": reload}
        (root / "state.tmp").write_text(json.dumps(base))
        os.replace(root / "state.tmp", state)
    write({"signal": "SIGUSR1", "count": 0})
    armed.touch()
    asked.wait()
    write({"signal": "SIGUSR1", "count": 1, "began_monotonic": began_before, "outcome": "applied",
           "changed": [], "settings": []})
    while not go.exists():
        time.sleep(0.02)
    write({"signal": "SIGUSR1", "count": 2, "began_monotonic": time.monotonic(), "outcome": "applied",
           "changed": ["secrets/clients/web (revoked)"], "settings": []})
    time.sleep(600)
""")


def _state(d: StackDir) -> dict[str, Any]:
    try:
        return json.loads(d.state_file.read_text())
    except (OSError, ValueError):
        return {}


def test_a_reload_in_hand_as_the_signal_comes_is_not_taken_for_the_commands_own(home: Path) -> None:
    platform = LocalPlatform(home, stacks_file(home))
    d = StackDir(home, "staging")
    d.ensure()
    apply_sqlite(d.db_path, MIGRATIONS_DIR)
    # Its command line is a stack host's for this home, as the platform checks before it signals a pid.
    host = subprocess.Popen([sys.executable, "-c", _HOST, str(d.root), "goldgate.local.stackhost",
                             "--stack", "staging", "--home", str(home)])
    try:
        assert wait_until(lambda: (d.root / "armed").exists(), 30)
        outcome: list[Reloaded | BaseException] = []

        def run() -> None:
            try:
                outcome.append(platform.reload("staging", timeout_s=60))
            except BaseException as exc:  # noqa: BLE001 -- said by the assertion below
                outcome.append(exc)

        waiter = threading.Thread(target=run)
        waiter.start()
        assert wait_until(lambda: _state(d).get("reload", {}).get("count") == 1, 30)
        # The in-hand reload's record is there to be read: a command that took it has returned by now.
        waiter.join(2)
        (d.root / "go").touch()
        waiter.join(60)
        assert not waiter.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], Reloaded), outcome
        assert outcome[0].changed == ["secrets/clients/web (revoked)"], outcome[0]
    finally:
        host.kill()
        host.wait()


def test_which_record_answers_a_reload() -> None:
    sent = time.monotonic()
    assert not reload_answered({"count": 3}, 3, sent)  # not counted yet
    assert not reload_answered({"count": 4, "began_monotonic": sent - 1}, 3, sent)  # in hand before the signal
    assert reload_answered({"count": 4, "began_monotonic": sent + 0.001}, 3, sent)
    assert reload_answered({"count": 5, "began_monotonic": sent - 1}, 3, sent)  # the second since began after it
    assert reload_answered({"count": 4}, 3, sent)  # a host that records no start time: taken at its count
    assert not reload_answered(None, 3, sent) and not reload_answered({"count": "4"}, 3, sent)
    # A count edited by hand in state.json (the host keeps its own): the start time alone answers.
    assert reload_answered({"count": 1, "began_monotonic": sent + 0.001}, "x", sent)
    assert not reload_answered({"count": 1, "began_monotonic": sent - 1}, "x", sent)
