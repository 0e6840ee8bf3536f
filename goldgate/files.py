"""Opening a file goldgate keeps or reads, without ever waiting on something that is no file: a named pipe nobody
writes blocks open() for ever, and a device or directory in a file's place is no file either. Stdlib only, with
service.files' words for what is there (the migration runner's too); each caller says in its own words what the
file is and what to do."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from service.files import file_kind


class NotARegularFile(OSError):
    """Something else than a regular file is at `path`; `kind` says what ("a named pipe (FIFO)", ...)."""

    def __init__(self, path: Path | str, kind: str) -> None:
        super().__init__(f"{path} is {kind}, not a regular file")
        self.path, self.kind = Path(path), kind


def open_regular(path: Path | str, flags: int, mode: int = 0o644, follow_symlinks: bool = True) -> int:
    """A blocking fd of the regular file at `path`, opened with `flags` (created with `mode`), without waiting;
    NotARegularFile when something else is there. Other OSErrors (a missing file, no permission) pass through.

    `follow_symlinks=False`: a symbolic link at `path` itself is refused too (NotARegularFile, "a symbolic
    link (to ...)"), for the files goldgate writes in its home's shared directories (locks, the ledger, the
    release log): where those are group-writable (umask 002), a link another user put there would have
    goldgate truncate or append to whatever file of its user the link names, or create one where it points.
    A link higher up the path (a home, or a directory in it, moved to another disk) is followed."""
    nofollow = 0 if follow_symlinks else os.O_NOFOLLOW
    try:
        fd = os.open(path, flags | os.O_NONBLOCK | nofollow, mode)
    except OSError as exc:
        if nofollow and exc.errno == errno.ELOOP and os.path.islink(path):
            raise NotARegularFile(path, _link_kind(path)) from None
        # ENXIO: a socket, or a pipe no one reads opened for writing; EISDIR: a directory opened for writing
        if exc.errno not in (errno.ENXIO, errno.EISDIR, errno.EOPNOTSUPP):
            raise
        try:
            kind = file_kind(os.stat(path).st_mode)
        except OSError:
            kind = "not a regular file"
        raise NotARegularFile(path, kind) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFile(path, file_kind(info.st_mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _link_kind(path: Path | str) -> str:
    try:
        return f"a symbolic link (to {os.readlink(path)})"
    except OSError:
        return "a symbolic link"


def lock_file(path: Path | str) -> int | None:
    """An fd of the file at `path` (made if missing; anything there but a regular file refused,
    NotARegularFile, a symbolic link too: a lock file is goldgate's own, never a link's target) holding an
    exclusive flock on it, taken without waiting; None (and nothing open) when another open file
    description holds it. Opened for writing: on NFS, flock is a byte-range lock, which an exclusive lock needs a
    writable fd for. The kernel drops it with its holder, so a killed holder never wedges the next. Closing the fd
    releases it."""
    fd = open_regular(path, os.O_RDWR | os.O_CREAT, follow_symlinks=False)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def flock_holder(path: Path | str) -> int | None:
    """The pid of the process holding a flock on the file or directory at `path`, as the kernel lists it in
    /proc/locks (Linux); None when none does or it cannot be told. Advice for a refusal, never a reason for one."""
    holders = flock_holders(path)
    return holders[0] if holders else None


def flock_holders(path: Path | str) -> list[int] | None:
    """The pids of the processes holding a flock on the file or directory at `path`, as the kernel lists them in
    /proc/locks (Linux; 0 for one it cannot name in this pid namespace), without taking it: [] when none holds it,
    None when that cannot be told (no /proc/locks, or nothing at `path`)."""
    try:
        info = os.stat(path)
        wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; a waiter's line has "->" after the number
            return [int(fields[4]) for fields in (line.split() for line in locks)
                    if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted and fields[4].isdigit()]
    except OSError:
        return None


# The most directories one make_dirs makes: a state path needing more is a mistake (an unset variable in a
# loop), not a home. Path.mkdir(parents=True) refused one thousands deep by recursing out of stack.
MAX_NEW_DIRS = 64


def make_dirs(path: Path | str) -> None:
    """`mkdir -p path` for the directories goldgate keeps its state in: each one it makes is 0755 less the
    umask, never group- or world-writable. Under umask 002 (a shared group) a group-writable home or `locks/`
    would let another user replace the ledger or a lock file with their own. One already there is left as it
    is (its owner made it so)."""
    path = Path(path)
    missing = []
    while not path.is_dir():
        missing.append(path)
        if len(missing) > MAX_NEW_DIRS:  # e.g. GOLDGATE_HOME=d/d/d/... thousands deep: nothing is made
            raise OSError(errno.ENAMETOOLONG, f"a path nested too deeply: more than {MAX_NEW_DIRS} directories "
                                              "would be made on the way to it")
        if path.parent == path:
            break
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o755)
        except FileExistsError:
            if not directory.is_dir():  # a file or a dangling link in the way: as mkdir -p says it
                raise
