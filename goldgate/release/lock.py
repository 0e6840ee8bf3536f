"""The release path's OS file locks (flock) in the state dir, each taken without waiting.

`ReleaseLock`: one PROD change at a time (a promotion or rollback), and no golden run of PROD while one runs.
`StackLock`: one golden run or deploy of a stack at a time, so that a deploy never changes the image under a golden
run's cases, nor a golden run binds to a pin its stack does not serve yet.

The kernel drops a lock when its holder dies, so a crashed command never wedges the next one; the file keeps the
holder's pid, command and purpose only as a hint for the refusal message. The state files the release path keeps
(these locks, the ledger, the release log) are opened with `open_state_file`, which refuses, by name, anything
there that is not a regular file, a symbolic link included: the home and its `locks/` and `logs/` may be
group-writable (made by an older goldgate under umask 002), and goldgate truncates a lock file and appends to
the ledger, so a link another user put there would have it write over a file of its user's choosing. A home
that is itself a link (moved to another disk) is followed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from goldgate.errors import StateError
from goldgate.files import NotARegularFile, flock_holders, make_dirs, open_regular
from goldgate.logs import now_rfc3339

LOCKS_DIR = "locks"   # under the state home: one StackLock file per target and stack


class ReleaseLocked(StateError):
    """Another promotion or rollback (or a golden run of PROD) holds the release lock."""


class StackBusy(StateError):
    """A golden run or a deploy of the stack holds it."""


class _Flock:
    """An exclusive flock on `path`, taken without waiting; the subclass says why it is refused."""

    role = "a lock"

    def __init__(self, path: Path, purpose: str, kind: str) -> None:
        self.path = path
        self.purpose = purpose
        self.kind = kind
        self._fd: int | None = None

    def __enter__(self) -> Self:
        make_dirs(self.path.parent)
        fd = open_state_file(self.path, os.O_RDWR | os.O_CREAT, self.role)
        try:  # the fd is closed on every way out but success: closing it also drops the lock if it was taken
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise self._refusal(_read_holder(fd)) from None
            # Who holds it is advice for the refusal another command shows; the lock is the flock. A full disk must
            # not fail the command here: its own writes say so, naming what they could not write.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps({"pid": os.getpid(), "purpose": self.purpose, "kind": self.kind,
                                          "command": _command(), "since": now_rfc3339()}).encode(), 0)
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

    def _refusal(self, holder: dict[str, Any]) -> StateError:
        raise NotImplementedError


class ReleaseLock(_Flock):
    """`with ReleaseLock(home, "promote prod", again="goldgate promote"):` ... raises ReleaseLocked if already held.
    `kind="golden"` is a golden run of PROD: it keeps PROD's image still for its cases, as a promotion or rollback keeps
    it for its own. `again` is the command the refusal tells to run once the holder is done: the refused one."""

    role = "the release lock"

    def __init__(self, home: Path, purpose: str, name: str = "release.lock", kind: str = "change",
                 again: str | None = None) -> None:
        super().__init__(Path(home) / name, purpose, kind)
        self.again = again

    def _refusal(self, holder: dict[str, Any]) -> StateError:
        who = _describe(holder)
        # Nothing was changed, and (where the caller named it) which command to run again: "try again" left the
        # operator guessing whether the refused promotion or rollback had done part of its work.
        then = _run_again(self.again)
        if holder.get("kind") == "golden":
            return ReleaseLocked(f"a golden run of PROD is running ({who}): a PROD change now would move the image "
                                 f"under its cases; nothing was changed: wait for it to finish{then} "
                                 f"(lock: {self.path})")
        if self.kind == "golden":
            command = _typed(self.again)
            return ReleaseLocked(f"a promotion or rollback is running ({who}): a golden run of PROD now would test "
                                 "an image on its way in or out, and its verdict would stay in the ledger; nothing was "
                                 "run: wait for it to finish and run the golden tests again"
                                 f"{f' (`{command}`)' if command else ''} (lock: {self.path})")
        return ReleaseLocked(f"another promotion or rollback is running ({who}); one PROD change at a time, nothing "
                             f"was changed: wait for it to finish{then} (lock: {self.path})")


class LockHeld(StateError):
    """A `HolderLock` another process holds: `holder` says who, in words, for the caller's own refusal."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


class HolderLock(_Flock):
    """A flock whose refusal only names its holder (LockHeld): for a caller that words the refusal itself, or goes
    on without the lock (the stack host's scheduled prune skips a run)."""

    def __init__(self, path: Path, purpose: str, kind: str, role: str) -> None:
        super().__init__(path, purpose, kind)
        self.role = role

    def _refusal(self, holder: dict[str, Any]) -> StateError:
        purpose = holder.get("purpose")
        return LockHeld(f"{purpose} (pid {holder.get('pid', '?')})" if isinstance(purpose, str) else "another process")


# The kinds of StackLock a promotion's gate takes on STAGING while it reads its pin and report: "gate" for a promotion,
# "check" for `goldgate promote --check`, which judges the gate the same way and never promotes.
GATE_KINDS = ("gate", "check")


class StackLock(_Flock):
    """`with StackLock(home, "local", "staging", "golden", "a full golden run on staging"):` ... raises StackBusy
    while another golden run or deploy (`kind` "golden" or "deploy") of the same stack holds it. Held by each
    golden run for all its cases and by each deploy until its rollout completes; a promotion's deploy and then its
    smoke run take it in turn, never nested. A promotion's gate holds STAGING's (`kind` "gate", or "check" for
    `promote --check`) while it reads its pin and report: a golden run under way there is about to write the newest
    evidence for the image it tests. `again` is the command a refusal tells to run once the holder is done."""

    role = "a stack lock"

    def __init__(self, home: Path, target: str, stack: str, kind: str, purpose: str, again: str | None = None) -> None:
        super().__init__(Path(home) / LOCKS_DIR / f"{target}-{stack}.lock", purpose, kind)
        self.stack = stack
        self.again = again

    def _refusal(self, holder: dict[str, Any]) -> StateError:
        theirs = holder.get("kind")
        if self.kind in GATE_KINDS:
            why = ("its report will be the newest evidence for the image it tests, which the gate must judge, not the "
                   "report before it" if theirs == "golden" else
                   "the gate would judge the image the stack is leaving" if theirs == "deploy" else
                   "a `promote --check` is reading it" if theirs == "check" else
                   "another promotion's gate is reading it")
            # A check never promotes: "nothing was promoted" read as if it might have.
            done = "nothing was promoted" if self.kind == "gate" else "the gate was not judged"
        elif theirs in GATE_KINDS:   # a promotion's gate reads the stack's pin and report: for a moment
            judge = "a promotion's gate" if theirs == "gate" else "a `promote --check`"
            why = f"{judge} is judging the image it runs (it takes a moment)"
            done = "nothing was run" if self.kind == "golden" else "nothing was pinned"
        elif self.kind == "golden":
            why = ("a golden run now would bind to an image its stack does not serve yet" if theirs == "deploy"
                   else "one golden run of a stack at a time (each measures latency, and each writes the report)")
            done = "nothing was run"
        else:
            why = ("a deploy now would change the image under its cases" if theirs == "golden"
                   else "one deploy of a stack at a time")
            done = "nothing was pinned"
        what = holder.get("purpose") if isinstance(holder.get("purpose"), str) else "a golden run or deploy"
        then = _run_again(self.again)
        # No lock path: a flock outlives no holder, so there is never a file to remove (the CLI cuts a line past
        # 600 characters in the middle, and three image refs and two paths come close).
        return StackBusy(f"{what} holds {self.stack} ({_describe(holder, purpose=False)}): {why}; {done}: wait for "
                         f"it to finish{then}")


def open_state_file(path: Path, flags: int, role: str, then: str = "") -> int:
    """A blocking fd on the regular file at `path`, opened with `flags`; StateError naming `path` when
    something else is there, a symbolic link included (`then` says what to do after moving it away). Opened
    without waiting: a named pipe nobody writes would block open() for ever, wedging every command that reads
    the ledger; opened read-write it opens at once and fails on use with a message naming no file (ftruncate's
    "Invalid argument")."""
    try:
        return open_regular(path, flags, follow_symlinks=False)
    except NotARegularFile as exc:
        raise _not_a_file(path, role, exc.kind, then) from None


def _not_a_file(path: Path, role: str, kind: str, then: str) -> StateError:
    # A link is refused rather than followed (module docstring); one the operator made to keep the file on
    # another disk is told the way that works.
    link = (" (goldgate follows no link there: link the whole state dir instead)"
            if kind.startswith("a symbolic link") else "")
    return StateError(f"{path} is {kind}, not a regular file: goldgate keeps {role} there{link}; move it out "
                      f"of the way{then}")


def _command() -> str:
    """This process's command line as its user typed it, for the refusal another command shows while it holds a
    lock ("which terminal is that?"); goldgate's own arguments carry no secret."""
    argv = list(sys.argv) or ["?"]
    name = Path(argv[0]).name
    if name in ("goldgate", "__main__.py", "cli.py"):
        name = "goldgate"
    text = shlex.join([name, *argv[1:]])
    text = text if len(text) <= 200 else text[:199] + "…"
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _typed(again: str | None) -> str | None:
    """`again`, the refused command, as this process's command line gave it when it is that command (with its options:
    `--reports-dir`, `--to`, `--json`), else as `again` names it (a promotion `goldgate release` runs is refused as a
    promotion: running `promote` again does not rebuild). None without `again`."""
    if not again:
        return None
    typed = _command()
    return typed if typed == again or typed.startswith(again + " ") else again


def _run_again(again: str | None) -> str:
    """", then run `<command>` again" for a refusal (`_typed`), or " and try again" when the caller named none."""
    command = _typed(again)
    return f", then run `{command}` again" if command else " and try again"


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _describe(holder: dict[str, Any], purpose: bool = True) -> str:
    if not holder:
        return "holder unknown"
    command = holder.get("command")
    said = [str(holder.get("purpose", "?"))] if purpose else []
    said += [f"pid {holder.get('pid', '?')}", f"since {holder.get('since', '?')}"]
    return ", ".join(said) + (f": `{command}`" if isinstance(command, str) and command else "")


def release_lock_holder(home: Path, name: str = "release.lock") -> dict[str, Any] | None:
    """Who holds the release lock now, as its holder wrote it (pid, purpose, kind, command, since), read without
    taking the lock: a `status` that took it, even for a moment, would make a promotion started then refuse. None when
    nobody holds it. The file is emptied as the lock is let go, but a holder killed (kill -9, out of memory, a reboot)
    leaves its pid there, and a live process of that pid proves nothing (pids are reused; pid 1 is always alive): the
    flock decides, as the kernel lists it (/proc/locks). Where that cannot be told, a live process named there."""
    path = Path(home) / name
    try:
        fd = open_state_file(path, os.O_RDONLY, "the release lock")
    except (OSError, StateError):
        return None
    try:
        holder = _read_holder(fd)
    finally:
        os.close(fd)
    pid = holder.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == os.getpid():
        return None
    held = flock_holders(path)
    if held is not None:
        return holder if held else None
    try:
        os.kill(pid, 0)
    except PermissionError:   # another user's process: alive
        pass
    except OSError:
        return None
    return holder


def describe_holder(holder: dict[str, Any]) -> str:
    """A lock's holder in words, as a refusal names it: purpose, pid, since and command."""
    return _describe(holder)
