"""Children never outlive the process that started them: the stack host's service and the emulator's workers.

The parent holds the write end of a pipe for its whole life and hands the read end to each child. However
the parent ends (SIGTERM, SIGKILL, the OOM killer, a crash) the kernel closes the write end, the child's
watcher reads EOF, and the child ends itself. Unlike PR_SET_PDEATHSIG this needs no Linux-only prctl and
does not fire early when the *thread* that forked the child exits (the fleet starts workers from short-lived
threads); it works the same on macOS.

    python -m goldgate.local.lifeline service.local_server --config X   # run a module under a lifeline
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time
from collections.abc import MutableMapping

ENV = "GOLDGATE_LIFELINE_FD"
TERM_GRACE_S = 3.0  # a process that is not a group leader gets SIGTERM first, SIGKILL after this


class Lifeline:
    """The parent's side: keep it for as long as the children may live; `child_env` and `pass_fds` go to Popen."""

    def __init__(self) -> None:
        # os.pipe() fds are non-inheritable (PEP 446): no child gets the write end, or EOF would never come.
        self._read_fd, self._write_fd = os.pipe()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def pass_fds(self) -> tuple[int, ...]:
        with self._lock:
            if self._closed:
                raise RuntimeError("lifeline closed: the parent is stopping and starts no more children")
            return (self._read_fd,)

    def child_env(self) -> dict[str, str]:
        return {ENV: str(self.pass_fds[0])}

    def close(self) -> None:
        """Cut the line: every child still watching it ends itself."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._write_fd)
            os.close(self._read_fd)


def watch(environ: MutableMapping[str, str] | None = None) -> bool:
    """In a child: end this process when the parent's lifeline closes. False when started without one.

    A group leader (a worker, which runs in its own session) takes its whole group with SIGKILL at once: the
    SDK's heartbeat process is forked without a watcher of its own. Anything else gets SIGTERM, then SIGKILL
    after TERM_GRACE_S."""
    env = os.environ if environ is None else environ
    raw = env.pop(ENV, None)  # our grandchildren are not given this fd number: it would name another file there
    if not raw:
        return False
    fd = int(raw)
    os.set_inheritable(fd, False)
    threading.Thread(target=_wait_for_eof, args=(fd,), name="lifeline", daemon=True).start()
    return True


def _wait_for_eof(fd: int) -> None:
    try:
        while os.read(fd, 1):
            pass
    except OSError:
        pass  # a broken line is as good as a cut one
    _end_self()


def _end_self() -> None:
    if os.getpgrp() == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(TERM_GRACE_S)
    os.kill(os.getpid(), signal.SIGKILL)


def run_module(argv: list[str]) -> None:
    """`python -m <module> args...` in this process, once this process watches its lifeline."""
    watch()
    if not argv:
        raise SystemExit("usage: python -m goldgate.local.lifeline <module> [args...]")
    sys.argv = list(argv)
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    run_module(sys.argv[1:])
