"""One PROD change at a time: an OS file lock (flock) in the state dir, taken without waiting.

The kernel drops the lock when the holder dies, so a crashed promotion never wedges the next
one; the file keeps the holder's pid and command only as a hint for the refusal message.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from goldgate.errors import StateError
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
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise ReleaseLocked(f"another promotion or rollback is running ({holder}); one PROD change at a "
                                f"time: wait for it to finish and try again (lock: {self.path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "purpose": self.purpose,
                                  "since": now_rfc3339()}).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"{info.get('purpose', '?')}, pid {info.get('pid', '?')}, since {info.get('since', '?')}"
    except (OSError, ValueError):
        return "holder unknown"
