"""Finding and cleaning up a test's processes through /proc (Linux): every process a test starts has the test's
own temp dir in its command line, so that is how they are found, and nothing else is ever signalled."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path


def argv_of(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


def _running(pid: int) -> bool:
    """Alive and not a zombie (a zombie holds no port, no file)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_naming(text: str) -> dict[int, list[str]]:
    """Every running process with `text` (a test's own temp dir) in its command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            argv = argv_of(int(entry.name))
            if any(text in a for a in argv) and _running(int(entry.name)):
                found[int(entry.name)] = argv
    return found


def wait_until(condition: Callable[[], object], timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval_s)
    return bool(condition())


def kill_everything_naming(text: str) -> None:
    """Test cleanup: SIGKILL what the test started (its temp dir is in every command line). Without /proc (not
    Linux) none can be found: the test's own `finally` is then the only cleanup, rather than an error here."""
    if not Path("/proc/self").is_dir():
        return
    for pid in processes_naming(text):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
