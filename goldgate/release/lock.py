"""One PROD change at a time: an OS file lock (flock) in the state dir, taken without waiting.

The kernel drops the lock when the holder dies, so a crashed promotion never wedges the next
one; the file keeps the holder's pid and command only as a hint for the refusal message. The state files the
release path keeps (this lock, the ledger, the release log) are opened with `open_state_file`, which refuses, by
name, anything there that is not a regular file.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from goldgate.errors import StateError
from goldgate.files import NotARegularFile, open_regular
from goldgate.logs import now_rfc3339


class ReleaseLocked(StateError):
    """Another promotion or rollback holds the lock."""


class ReleaseLock:
    """`with ReleaseLock(home, "promote prod"):` ... raises ReleaseLocked if already held."""

    def __init__(self, home: Path, purpose: str, name: str = "release.lock") -> None:
        self.path = Path(home) / name
        self.purpose = purpose
        self._fd: int | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = open_state_file(self.path, os.O_RDWR | os.O_CREAT, "the release lock")
        try:  # the fd is closed on every way out but success: closing it also drops the lock if it was taken
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ReleaseLocked(f"another promotion or rollback is running ({_read_holder(fd)}); one PROD "
                                    "change at a time: wait for it to finish and try again (lock: "
                                    f"{self.path})") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "purpose": self.purpose,
                                      "since": now_rfc3339()}).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def open_state_file(path: Path, flags: int, role: str, then: str = "") -> int:
    """A blocking fd on the regular file at `path`, opened with `flags`; StateError naming `path` when something
    else is there (`then` says what to do after moving it away). Opened without waiting: a named pipe nobody writes
    would block open() for ever, wedging every command that reads the ledger; opened read-write it opens at once
    and fails on use with a message naming no file (ftruncate's "Invalid argument")."""
    try:
        return open_regular(path, flags)
    except NotARegularFile as exc:
        raise _not_a_file(path, role, exc.kind, then) from None


def _not_a_file(path: Path, role: str, kind: str, then: str) -> StateError:
    return StateError(f"{path} is {kind}, not a regular file: goldgate keeps {role} there; move it out of the "
                      f"way{then}")


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"{info.get('purpose', '?')}, pid {info.get('pid', '?')}, since {info.get('since', '?')}"
    except (OSError, ValueError):
        return "holder unknown"
