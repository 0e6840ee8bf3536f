"""Children never outlive the process that started them: the stack host's service and the emulator's workers.

The parent holds the write end of a pipe for its whole life and hands the read end to each child. However
the parent ends (SIGTERM, SIGKILL, the OOM killer, a crash) the kernel closes the write end, the child's
watcher reads EOF, and the child ends itself. Unlike PR_SET_PDEATHSIG this needs no Linux-only prctl and
does not fire early when the *thread* that forked the child exits (the fleet starts workers from short-lived
threads); it works the same on macOS.

    python -m goldgate.local.lifeline service.local_server --config X   # run a module under a lifeline

`exit_now` ends such a process (the service, a worker, the stack host) once it has stopped everything it runs.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import runpy
import signal
import sys
import threading
import time
from collections.abc import MutableMapping
from typing import NoReturn

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


def exit_status(code: object) -> int:
    """The exit status the interpreter gives `SystemExit(code)`: None is 0, an int itself, anything else is
    printed on stderr and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    # a closed stderr: the status still goes out
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(code, file=sys.stderr)
    return 1


def exit_now(code: object = 0) -> NoReturn:
    """End this process with `code` (as `sys.exit(code)` would) once it has stopped what it runs, without the
    interpreter's teardown: what `sys.exit` does first is done here (the threads that are not daemons are
    waited for, by falling back to `sys.exit` itself while one still runs; the atexit handlers run, e.g.
    logging's flush and multiprocessing's stop of its daemon children; stdout and stderr are flushed), then
    os._exit, as a multiprocessing child ends. The teardown that is left out frees, one by one, every object
    and module of a process about to end (the host and the service hold boto3, moto and uvicorn): about 0.3 s
    of CPU per process, paid by each service, worker and stack host the local target stops. Every other file
    these processes write is closed before this (the host's log goes through os.write)."""
    status = exit_status(code)
    if any(t.is_alive() and not t.daemon and t is not threading.main_thread() for t in threading.enumerate()):
        sys.exit(status)  # the interpreter waits for it, then tears down as usual
    atexit._run_exitfuncs()  # the interpreter's own step, run as it runs it
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(status & 0xFF)


def run_module(argv: list[str]) -> None:
    """`python -m <module> args...` in this process, once this process watches its lifeline."""
    watch()
    if not argv:
        raise SystemExit("usage: python -m goldgate.local.lifeline <module> [args...]")
    sys.argv = list(argv)
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    try:
        run_module(sys.argv[1:])
    except SystemExit as exc:
        exit_now(exc.code)
    exit_now(0)
