"""The local target's state directory: where each stack keeps its secrets, pin, database and logs.

Layout (`$GOLDGATE_HOME` or `./.goldgate`):
    stacks/<stack>/state.json      ports, pids, endpoint id of the running stack (absent when down)
    stacks/<stack>/host.lock       held (flock) by the stack's host process for its whole life
    stacks/<stack>/up.lock         held (flock) by the one `goldgate up` of the stack in progress
    stacks/<stack>/secrets/        api_token, webhook_secret, runpod_api_key, s3_* (mode 0600)
    stacks/<stack>/pin.json        the image the stack runs (a digest ref), with who pinned it
    stacks/<stack>/db.sqlite       the stack's "D1"
    stacks/<stack>/logs/*.jsonl    component logs, schema v1
    stacks/<stack>/objects/<bucket>/  the stack's "R2" bucket on disk (goldgate.local.object_store)
    stacks/<stack>/workers/<id>/   each running worker's scratch space (its TMPDIR), removed when it ends
    images/<hex>/                  content-addressed worker snapshots
    ledger.jsonl                   release ledger
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goldgate.errors import StateError
from goldgate.logs import now_rfc3339

SECRET_NAMES = ("api_token", "webhook_secret", "runpod_api_key", "s3_access_key_id", "s3_secret_access_key")


def default_home() -> Path:
    return Path(os.environ.get("GOLDGATE_HOME") or Path.cwd() / ".goldgate").resolve()


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (secrets, configs holding secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)


def write_json_atomic(path: Path, data: Any, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    text = json.dumps(data, indent=2, sort_keys=True)
    if private:
        write_private(tmp, text)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StateError(f"{path} is corrupt ({exc}); remove it and run the command again") from None


def read_record(path: Path, max_bytes: int, again: str) -> Any | None:
    """A small JSON record goldgate keeps under the home (a drill's, a prune's), or None when there is none. One
    that is too big to be one, or does not parse, is a StateError saying to run `again` (the command that
    writes it anew); it is never silently taken for no record."""
    try:
        if path.stat().st_size > max_bytes:
            raise StateError(f"{path} is {path.stat().st_size} bytes, not a goldgate record (it was not read); "
                             f"run `{again}` again")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # Recursion: nesting too deep to parse
        raise StateError(f"{path} is corrupt ({str(exc)[:200]}); run `{again}` again") from None


@dataclass(frozen=True)
class StackDir:
    """One stack's directory in the state home."""

    home: Path
    stack: str

    @property
    def root(self) -> Path:
        return self.home / "stacks" / self.stack

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "host.lock"

    def take_host_lock(self) -> int | None:
        """Take the stack's host lock for this process's life and record our pid in it; the open fd, or
        None when another live process holds it (the lock goes with its holder, so a dead host leaves none)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return fd

    @property
    def up_lock_file(self) -> Path:
        return self.root / "up.lock"

    @contextlib.contextmanager
    def starting(self, timeout_s: float) -> Iterator[bool]:
        """Held by one `goldgate up` of the stack at a time, from its first look at the state to the stack's
        readiness: a second `up` run meanwhile waits and then finds the stack up instead of racing a second host
        (which would lose the host lock and fail). Yields False when the wait ran out."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.up_lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(0.1)
            yield True
        finally:
            os.close(fd)  # releases the lock; a killed `up` releases it the same way

    def host_lock_pid(self) -> int | None:
        """The pid the last lock holder recorded (it may be gone: check it before trusting it). Read without
        locking, so a look never stops a host from taking the lock."""
        try:
            text = self.lock_file.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    @property
    def pin_file(self) -> Path:
        return self.root / "pin.json"

    @property
    def db_path(self) -> Path:
        return self.root / "db.sqlite"

    @property
    def objects_dir(self) -> Path:
        return self.root / "objects"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def workers_dir(self) -> Path:
        """Each local worker's scratch space (its TMPDIR), removed when it ends, cleared when the stack starts."""
        return self.root / "workers"

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    def secret_file(self, name: str) -> Path:
        return self.secrets_dir / name

    def ensure(self) -> None:
        """Create the directories and any missing secret (random, 256 bits)."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.secrets_dir, 0o700)
        for name in SECRET_NAMES:
            path = self.secret_file(name)
            # An empty (truncated) secret was never a usable one: nothing to keep, so it is made anew.
            if not path.exists() or not path.read_text(encoding="utf-8").strip():
                write_private(path, secrets.token_hex(32 if name != "s3_access_key_id" else 10))

    def secret(self, name: str) -> str:
        path = self.secret_file(name)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise StateError(f"stack {self.stack} has no {name} yet; run `goldgate up {self.stack}`") from None
        if not value:
            # An empty token would be sent (or accepted) as a credential: refuse it by name.
            raise StateError(f"{path} ({name}) is empty; run `goldgate up {self.stack}` to make a new one "
                             "(a running stack keeps the old one until `goldgate down` and up)")
        return value

    def pinned_image(self) -> str | None:
        pin = read_json(self.pin_file)
        return pin.get("image") if isinstance(pin, dict) else None

    def pin(self, image: str, reason: str) -> None:
        write_json_atomic(self.pin_file, {"image": image, "reason": reason, "pinned_at": now_rfc3339()})
