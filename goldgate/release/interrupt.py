"""A PROD change ended part-way by its operator or its CI runner. Ctrl-C raises KeyboardInterrupt; SIGTERM (a
cancelled CI job: the runner sends SIGINT or SIGTERM, then SIGKILL) killed the process outright, with no word on
what PROD was left on. While a promotion or rollback runs, SIGTERM ends it the way Ctrl-C does: the golden run
stops its cases, a ledger line being written is written whole or not at all, and the command says what it left.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGTERM_NOTE = "SIGTERM"   # the KeyboardInterrupt a SIGTERM raises carries it, so that the operator is told which


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt("SIGTERM") once; a second SIGTERM kills as before (the
    sender means it). Only in the main thread (the only one that may handle signals) and only where nothing else
    handles SIGTERM: a process that embeds goldgate keeps its own handler."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        # Plain KeyboardInterrupt, not a subclass: code that treats Ctrl-C specially (subprocess waits only briefly
        # for a child on it) treats a cancelled job the same way.
        raise KeyboardInterrupt(SIGTERM_NOTE)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def how(exc: KeyboardInterrupt) -> str:
    """"terminated (SIGTERM)" or "interrupted", for the line that says what an interrupt left."""
    return "terminated (SIGTERM)" if exc.args == (SIGTERM_NOTE,) else "interrupted"
