"""The local target's state directory: where each stack keeps its secrets, pin, database and logs.

Layout (`$GOLDGATE_HOME` or `./.goldgate`):
    stacks/<stack>/state.json      ports, pids, endpoint id of the running stack (absent when down), the code
                                   its host runs (the sha256 of each source file, as it read them at its start),
                                   and when that host started (`started_at`; a host of an older goldgate wrote none);
                                   after a stop by a signal `down` did not send, "stopped" with the jobs it left
    stacks/<stack>/host.lock       held (flock) by the stack's host process for its whole life
    stacks/<stack>/up.lock         held (flock) by the `goldgate up` (or `down`, deploy, reload, dr-restore)
                                   in progress; names it
    stacks/<stack>/stop.lock       held (flock) by a `goldgate down` while it stops the stack with up.lock held
                                   by a deploy or reload in progress: the host reads its stop as asked
    stacks/<stack>/secrets/        api_token, webhook_secret, runpod_api_key, s3_* (mode 0600); the operator's
                                   webhook_secret_previous only while the webhook secret is rotated,
                                   api_token_previous only while the API token is rotated; clients/<name>,
                                   each named client's token (goldgate/local/client_tokens.py)
    stacks/<stack>/pin.json        the image the stack runs (a digest ref), with who pinned it
    stacks/<stack>/db.sqlite       the stack's "D1"
    stacks/<stack>/logs/*.jsonl    component logs, schema v1
    stacks/<stack>/logs/worker-<id>.log  each RunPod worker's output; removed a week after its last line, at `up`
    stacks/<stack>/objects/<bucket>/  the stack's "R2" bucket on disk (goldgate.local.object_store)
    stacks/<stack>/workers/<id>/   each running worker's scratch space (its TMPDIR), removed when it ends
    stacks/<stack>/prune.lock      held (flock) by a prune of the stack's database (`goldgate prune`, a local
                                   `dr-drill`, the host's scheduled retention); names it
    images/<hex>/                  content-addressed worker snapshots
    locks/<target>-<stack>.lock    held (flock) by a golden run or a deploy of the stack (goldgate.release.lock)
    release.lock                   held (flock) by a promotion or rollback, and by a golden run of PROD
    ledger.jsonl                   release ledger
    logs/release.jsonl             each ledger entry as a schema-v1 line (component release)
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import signal
import sqlite3
import stat
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from goldgate.bounded_http import bearer_token
from goldgate.errors import StateError, describe
from goldgate.files import NotARegularFile, make_dirs, open_regular
from goldgate.logs import now_rfc3339
from goldgate.spec import StackSpec
from service.config import (
    CURRENT_TOO_SHORT,
    PREVIOUS_IS_API_TOKEN,
    PREVIOUS_IS_CURRENT,
    PREVIOUS_TOO_SHORT,
    TOKEN_PREVIOUS_IS_CURRENT,
    TOKEN_PREVIOUS_IS_WEBHOOK_SECRET,
    current_secrets_problem,
    previous_secret_problem,
    previous_token_problem,
)

MAX_SECRET_BYTES = 4096  # a secret goldgate makes is 64 hex characters
# The logs a stack's processes append to, besides one worker-<id>.log per RunPod worker.
STACK_LOGS = ("stackhost.stderr.log", "stackhost.jsonl", "service.jsonl", "runpod-emulator.jsonl")
SECRET_NAMES = ("api_token", "webhook_secret", "runpod_api_key", "s3_access_key_id", "s3_secret_access_key")
# Each secret as an operator names it, in full and for short.
SECRET_WORDS = {"api_token": ("API token", "token"), "webhook_secret": ("webhook secret", "secret"),
                "runpod_api_key": ("RunPod API key", "key"), "s3_access_key_id": ("S3 access key id", "key id"),
                "s3_secret_access_key": ("S3 secret access key", "key"),
                "webhook_secret_previous": ("previous webhook secret", "secret"),
                "api_token_previous": ("previous API token", "token")}
# Written by the operator only while the webhook secret is rotated (docs/RUNBOOK.md): the old webhook secret, which
# the service still accepts for the webhooks of jobs in flight and the result URLs handed out. Never made by `up`.
WEBHOOK_SECRET_PREVIOUS = "webhook_secret_previous"
# Written by the operator only while the API token is rotated: the old token, which the service still accepts from the
# clients that hold it. Never made by `up`.
API_TOKEN_PREVIOUS = "api_token_previous"
# What removing a rotated secret's file ends: the old value is no longer accepted, by whom it reaches.
_ROTATION_ENDS = {WEBHOOK_SECRET_PREVIOUS: "webhooks of jobs sent before it and result URLs signed with it fail",
                  API_TOKEN_PREVIOUS: "a client still sending it gets 401"}
# The files a rotation edits: a running stack's service keeps what it read until a reload, a deploy or a restart.
ROTATED_SECRETS = ("api_token", "webhook_secret", WEBHOOK_SECRET_PREVIOUS, API_TOKEN_PREVIOUS)
# What `goldgate reload` sends the stack's host: a new service on the secret files beside the old one, nothing else.
# Not SIGHUP, the deploy's: that one re-pins the endpoint's image and PATCHes its env, which a reload must never do.
# A host that takes it says so in state.json (`reload.signal`): to a host of an older goldgate SIGUSR1 is death.
RELOAD_SIGNAL = signal.SIGUSR1
# A worker log's life once its worker is gone: the fleet writes one per worker it ever starts, so a stack that runs
# for months would otherwise fill its logs dir with them. Removed when the stack starts, and hourly while it runs (the
# emulator's fleet, EmulatorConfig.worker_log_max_age_s).
WORKER_LOG_MAX_AGE_S = 7 * 86400


class EmptySecret(StateError):
    """A secret file goldgate makes is empty: the stack's next start makes a new one, so only a restart mends it."""


def remove_old_worker_logs(logs_dir: Path, max_age_s: float, keep: Collection[str] = ()) -> int:
    """Remove the worker logs in `logs_dir` (worker-<id>.log) untouched for `max_age_s`, but those of the worker ids
    in `keep`; how many went. Only regular files; one that cannot go is kept: this is housekeeping."""
    cutoff = time.time() - max_age_s
    removed = 0
    for path in logs_dir.glob("worker-*.log") if logs_dir.is_dir() else []:
        if path.name[len("worker-"):-len(".log")] in keep:
            continue
        with contextlib.suppress(OSError):
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


def spec_fingerprint(spec: StackSpec) -> str:
    """What the stack's host runs with, as a hash: a running stack whose stacks/local.yaml section has changed since
    (workers_max, faults) keeps the old settings until it restarts, and `up` says so. The image is the pin's, not
    the file's, and the golden thresholds and the backup window are read by each command that uses them: none needs a restart."""
    fields = dataclasses.asdict(dataclasses.replace(spec, image=None))
    fields.pop("thresholds")
    fields["storage"].pop("backup_retention_days")  # read by each drill, not by the stack's host
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# The packages of this checkout a stack's processes run: its host (the emulators in it) and the service it starts.
CODE_PACKAGES = ("goldgate", "service", "images")
CODE_ROOT = Path(__file__).resolve().parents[2]
_MAX_SOURCE_BYTES = 8 * 1024 * 1024


def code_record(modules: Iterable[Any] = ()) -> dict[str, str]:
    """The code a stack's host runs, as `path -> sha256` of this checkout's source files: the modules it loaded
    (`modules`: its sys.modules values) and each file of the service it starts. A running host keeps the code it
    started with until it restarts, whatever an upgrade (git pull, pip install) puts in the checkout: state.json
    keeps this record, and `status` and `up` compare it with the checkout (`changed_code`)."""
    paths = {*CODE_ROOT.glob("service/**/*.py")}
    for module in modules:
        source = getattr(module, "__file__", None)
        # By the name it was imported as: `python -m goldgate.local.stackhost` runs the host as `__main__`.
        name = getattr(getattr(module, "__spec__", None), "name", None) or getattr(module, "__name__", "")
        if str(name).partition(".")[0] in CODE_PACKAGES and isinstance(source, str):
            paths.add(Path(source))
    record = {}
    for path in paths:
        rel = _code_path(path)
        if rel is not None and (digest := _source_sha256(CODE_ROOT / rel)) is not None:
            record[rel] = digest
    return dict(sorted(record.items()))


def changed_code(record: Mapping[str, Any]) -> list[str]:
    """The files of a host's `code_record` whose text in this checkout differs now, or that it no longer holds."""
    return sorted(rel for rel, digest in record.items()
                  if _code_path(CODE_ROOT / rel) != rel or _source_sha256(CODE_ROOT / rel) != digest)


def _code_path(path: Path) -> str | None:
    """`path` as a record names it (goldgate/local/state.py), or None when it is no source of this checkout's
    packages: a record is read back from state.json, and only those files are read to compare it."""
    try:
        rel = path.resolve().relative_to(CODE_ROOT)
    except (OSError, ValueError, RuntimeError):
        return None
    return rel.as_posix() if rel.parts[:1] in {(name,) for name in CODE_PACKAGES} and rel.suffix == ".py" else None


def _source_sha256(path: Path) -> str | None:
    """The sha256 of a source file; None for one that is gone or cannot be read (opened without blocking)."""
    try:
        fd = open_regular(path, os.O_RDONLY)
    except OSError:  # NotARegularFile too
        return None
    with os.fdopen(fd, "rb") as f:
        data = f.read(_MAX_SOURCE_BYTES + 1)
    return hashlib.sha256(data).hexdigest() if len(data) <= _MAX_SOURCE_BYTES else None


def secret_file_changes(before: Any, after: Any) -> list[str]:
    """The secret files that differ between two `rotated_secrets_stamp`s, each named with how (added, removed,
    changed; a client's file: added, revoked, replaced), never what it holds. A file the earlier stamp does not
    name (a host of an older goldgate recorded fewer) is not compared."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    changed = []
    for name in ROTATED_SECRETS:
        if name in before and before.get(name) != after.get(name):
            how = "added" if before.get(name) is None else "removed" if after.get(name) is None else "changed"
            changed.append(f"secrets/{name} ({how})")

    def clients(stamp: Mapping[str, Any]) -> dict[str, Any]:
        rows = stamp.get("clients")
        return {str(row[0]): row[1:] for row in rows if isinstance(row, list) and row} if isinstance(rows, list) else {}

    if "clients" in before:
        was, now = clients(before), clients(after)
        for name in sorted(was.keys() | now.keys()):
            if was.get(name) != now.get(name):
                how = "added" if name not in was else "revoked" if name not in now else "replaced"
                changed.append(f"secrets/clients/{name} ({how})")
    return changed


def host_started_s(state: Any) -> float | None:
    """When the host that wrote `state` (state.json's record) started, in seconds since the epoch: its `started_at`.
    None when the record does not say (a host started by an older goldgate wrote none) or says something that is no
    UTC time."""
    value = state.get("started_at") if isinstance(state, dict) else None
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z", value):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:  # a date that does not exist (Feb 30)
        return None


def default_home() -> Path:
    return Path(os.environ.get("GOLDGATE_HOME") or Path.cwd() / ".goldgate").resolve()


def write_private(path: Path, text: str, durable: bool = False) -> None:
    """Write a file only its owner can read (secrets, configs holding secrets); `durable`: on disk before it returns."""
    _write(path, text, 0o600, durable)
    os.chmod(path, 0o600)


def write_json_atomic(path: Path, data: Any, private: bool = False) -> None:
    """Replace `path` with `data` as JSON, whole or not at all, and durably: the temp file is on disk before it is
    renamed over `path`, and the rename before this returns. Without the fsyncs, a machine that lost power soon after
    could come back with the rename done and the file empty (XFS, ext4 without auto_da_alloc): a pin.json that
    `up` refused as corrupt, advising to remove it, which left PROD with no image at all."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True), private)


def write_text_atomic(path: Path, text: str, private: bool = False, mode: int | None = None) -> None:
    """Replace `path` with `text`, whole or not at all, and durably (as `write_json_atomic`). `mode`: the new file's
    permission bits (a file rewritten in place keeps its own), else 0600 when `private`, else 0644 less the umask.
    A write that fails (a full disk) leaves `path` as it was, and its OSError names `path`, not the temp file:
    "No space left on device" from a buffered write named no file at all."""
    # A temp name of this write's own: two writers of one file (the emulator saves its state from concurrent
    # requests) each rename a whole file into place, never the other's half-written one.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        if private:
            write_private(tmp, text, durable=True)
        else:
            _write(tmp, text, 0o644, durable=True)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (None, str(tmp), tmp):
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc
        raise
    _sync_dir(path.parent)


# What a write fails with on a disk that is full (or a quota, a file size limit, a file system remounted read-only).
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def write_failure(exc: BaseException) -> str:
    """A failed write as an operator reads it, in one line: "No space left on device writing <path>"; any other error
    as `goldgate.errors.describe` says it."""
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS and exc.filename:
        return f"{exc.strerror or os.strerror(exc.errno)} writing {os.fsdecode(exc.filename)}"
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {os.fsdecode(exc.filename)}"
    return describe(exc)


# The temp files `write_text_atomic` renames into place, as a writer killed before its rename leaves them.
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}\.tmp")


def remove_stale_temps(directory: Path, names: tuple[str, ...], older_than_s: float) -> list[Path]:
    """Remove the temp files of `names` (`.state.json.<12 hex>.tmp`) in `directory` that a writer killed before its
    rename left (SIGKILL, a power cut), once older than `older_than_s`: a younger one may be a live writer's. Only
    regular files; what cannot go stays (this is housekeeping). The ones removed."""
    cutoff = time.time() - older_than_s
    removed = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for path in entries:
        match = _TEMP_NAME.fullmatch(path.name)
        if match is None or match["name"] not in names:
            continue
        with contextlib.suppress(OSError):
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                path.unlink()
                removed.append(path)
    return removed


def _sync_dir(path: Path) -> None:
    """Make a rename in the directory `path` durable (where the file system can: some refuse a directory's fsync)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write(path: Path, text: str, mode: int, durable: bool = False) -> None:
    """Write `text` over the file at `path`; one that is not a regular file is refused, not waited on (a FIFO
    would block the writer until a reader came: forever). `durable`: fsynced before it is closed."""
    make_dirs(path.parent)
    fd = _open_regular(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode,
                       "not a file goldgate can write (nothing was written to it)", None)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
    except OSError as exc:  # a full disk: named by the file it could not write (a buffered write names none)
        if exc.errno is None or exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc


_UP_LOCK_ROLE = "the lock `up`, `down`, deploys and restores hold the stack with"


def _open_regular(path: Path, flags: int, mode: int, what: str, again: str | None) -> int:
    """An fd of the regular file at `path` (opened with `flags`, created with `mode`), opened without blocking:
    anything else there is a StateError saying it is `what`, and to remove it and run `again`."""
    try:
        return open_regular(path, flags, mode)
    except NotARegularFile as exc:
        raise StateError(f"{path} is {exc.kind}, {what}; remove it and {_run_again(again)}") from None


MAX_STATE_BYTES = 1024 * 1024  # state.json and pin.json are a few hundred bytes; anything this big is not one


def _first_clause(message: str) -> str:
    """A refusal's statement of what is wrong, without the advice after it: up to its first `; ` or `: ` outside
    parentheses (a decode error's own `: ` sits inside them)."""
    depth = 0
    for i, ch in enumerate(message):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and message.startswith(("; ", ": "), i):
            return message[:i]
    return message


def _run_again(again: str | None) -> str:
    return f"run `{again}` again" if again else "run the command again"


def read_small_bytes(path: Path, max_bytes: int, again: str | None = None) -> bytes | None:
    """The bytes of a file goldgate keeps under the home, or None when there is none. Opened without blocking
    and checked before it is read: a FIFO put in its place would block the command forever (no writer ever
    comes), a directory or device is not one, and a file over `max_bytes` is not read into memory."""
    try:
        fd = _open_regular(path, os.O_RDONLY, 0o644, "not a goldgate file (it was not read)", again)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if info.st_size > max_bytes:
            raise StateError(f"{path} is {info.st_size} bytes, not a goldgate record (it was not read); "
                             f"remove it and {_run_again(again)}")
        # As much as is there (and a byte more, to see it grew): read(n) sets aside n bytes first, and a 5 GiB
        # limit (a saved result object's) asked for 5 GiB for every 3-byte file, a MemoryError on a small host.
        raw = f.read(min(info.st_size, max_bytes) + 1)
        while len(raw) <= max_bytes and (more := f.read(min(1 << 20, max_bytes + 1 - len(raw)))):
            raw += more
    if len(raw) > max_bytes:  # it grew after the look
        raise StateError(f"{path} is over {max_bytes} bytes, not a goldgate record (it was not read); "
                         f"remove it and {_run_again(again)}")
    return raw


def read_small_text(path: Path, max_bytes: int, again: str | None = None) -> str | None:
    """The UTF-8 text of a small file goldgate keeps under the home, or None when there is none (as
    `read_small_bytes`)."""
    raw = read_small_bytes(path, max_bytes, again)
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StateError(f"{path} is corrupt ({str(exc)[:200]}); {_run_again(again)}") from None


def open_log(path: Path, again: str | None = None, binary: bool = False) -> IO[Any]:
    """A log file opened for append (created when missing). A FIFO put in its place would block the opener until
    a reader came (forever), and a directory, a socket or a device is no log: each is refused with a StateError
    naming it and `again`, the command to run once it is removed, and left as it is (it may be someone's)."""
    fd = _open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644,
                       "not a log file goldgate can append to (nothing was written to it)", again)
    return os.fdopen(fd, "ab") if binary else os.fdopen(fd, "a", encoding="utf-8")


def read_json(path: Path, again: str | None = None) -> Any | None:
    text = read_small_text(path, MAX_STATE_BYTES, again)
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise StateError(f"{path} is corrupt ({str(exc)[:200]}); remove it and {_run_again(again)}") from None


def read_record(path: Path, max_bytes: int, again: str) -> Any | None:
    """A small JSON record goldgate keeps under the home (a drill's, a prune's), or None when there is none. One
    that is too big to be one, is not a regular file, or does not parse, is a StateError saying to run `again`
    (the command that writes it anew); it is never silently taken for no record."""
    text = read_small_text(path, max_bytes, again)
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # Recursion: nesting too deep to parse
        raise StateError(f"{path} is corrupt ({str(exc)[:200]}); run `{again}` again") from None


def _json_problem(exc: Exception) -> str:
    """Why a record is no JSON, in at most 46 characters: the parser's reason (cut) and where it stopped."""
    if isinstance(exc, json.JSONDecodeError):
        said = exc.msg.removesuffix(" at")   # "Invalid control character at": not "... at at char 14"
        reason = said if len(said) <= 28 else said[:27] + "…"
        return f"{reason} at char {exc.pos}"
    return "nested too deep" if isinstance(exc, RecursionError) else str(exc)[:46]


@dataclass(frozen=True)
class StackDir:
    """One stack's directory in the state home. `role` (staging or prod), when the one who made it read the stack's
    spec: the advice for a damaged pin differs (PROD takes no `goldgate deploy`); not part of the value."""

    home: Path
    stack: str
    role: str | None = field(default=None, compare=False)

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
        make_dirs(self.root)
        fd = self._lock_fd(self.lock_file, "the stack's host lock")
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

    def _lock_fd(self, path: Path, role: str = _UP_LOCK_ROLE) -> int:
        """An fd of the lock file at `path` (made if missing). Anything but a regular file there is a
        StateError, a symbolic link included: the lock is written (who holds it) and truncated, so a link
        another user put there would have goldgate empty whatever file it names. A link higher up (the home
        moved) is followed."""
        try:
            return open_regular(path, os.O_RDWR | os.O_CREAT, 0o644, follow_symlinks=False)
        except NotARegularFile as exc:
            link = (" (goldgate follows no link there: link the whole home instead)"
                    if exc.kind.startswith("a symbolic link") else "")
            raise StateError(f"{path} is {exc.kind}, not a regular file: goldgate keeps {role} there{link}; "
                             f"move it out of the way and {_run_again(None)}") from None

    @contextlib.contextmanager
    def starting(self, timeout_s: float, waiting: Callable[[str], None] | None = None) -> Iterator[bool]:
        """Held by one `goldgate up` of the stack at a time, from its first look at the state to the stack's
        readiness (and by a `down` while it stops the stack, `stopping`): a second `up` run meanwhile waits and
        then finds the stack up instead of racing a second host (which would lose the host lock and fail); an
        `up` run while a `down` stops the stack waits for it and then starts the stack anew, instead of taking
        the stopping stack for a running one. `waiting` is told once who it waits for. Yields False when the
        wait ran out. A home this user cannot write (a read-only mount, another user's) has its lock taken all
        the same (`_readable_up_lock`): `up` then finds a running stack up, and refuses to start one in its own
        words."""
        make_dirs(self.root)
        fd = self._readable_up_lock()
        held = False
        try:
            deadline = time.monotonic() + timeout_s
            told = waiting is None
            while not (held := self._take_up_lock(fd, "up")):
                if time.monotonic() >= deadline:
                    yield False
                    return
                if not told:
                    told = True
                    waiting(self._up_lock_holder(fd))  # type: ignore[misc]
                time.sleep(0.1)
            yield True
        finally:
            if held:
                self._left_up_lock(fd)
            os.close(fd)  # releases the lock; a killed `up` releases it the same way

    def _readable_up_lock(self) -> int:
        """The up lock's fd for `starting`, opened read-only when it cannot be opened for writing (a read-only file
        system, or a lock file of another user's): flock needs no write access, so an `up` there still waits for
        one that starts or stops the stack from a writable place, and then reads the stack as it is. It failed on
        "Read-only file system (.../up.lock)" for a stack that was up, and `up` of a running stack writes nothing
        (README: `goldgate up staging --json` is how a script reads a stack's URL). The first error stands when
        there is no lock file to open (the stack was never brought up from this home)."""
        try:
            return self._lock_fd(self.up_lock_file)
        except OSError as exc:
            if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise
            try:
                return open_regular(self.up_lock_file, os.O_RDONLY, follow_symlinks=False)
            except (OSError, NotARegularFile):
                raise exc from None

    @contextlib.contextmanager
    def stopping(self) -> Iterator[None]:
        """Taken by `goldgate down` while it stops the stack, when it can be: so an `up` run meanwhile waits for
        it (`starting`). Never waited for (an `up` that holds it is starting the very host `down` stops), and
        never a reason to fail: a stack that never ran, or a read-only home, is stopped without it."""
        if not self.root.is_dir():
            yield
            return
        try:
            fd = self._lock_fd(self.up_lock_file)
        except (OSError, StateError):  # a link or a pipe there is `up`'s to refuse; `down` stops the stack
            yield
            return
        held, asked = False, None
        try:
            held = self._take_up_lock(fd, "down")
            if not held:  # a deploy or a reload holds it: the host is told this stop is asked all the same
                asked = self._ask_stop()
            yield
        finally:
            if held:
                self._left_up_lock(fd)
            os.close(fd)
            if asked is not None:
                os.close(asked)

    @property
    def stop_lock_file(self) -> Path:
        return self.root / "stop.lock"

    def _ask_stop(self) -> int | None:
        """The stop lock, taken by a `down` that cannot take the up lock (a deploy or a reload holds it while the
        host is stopped under it): the host, reading who asked for its stop (`stop_asked_by`), found the reload's
        words in the up lock and logged `down`'s stop as one from outside goldgate (a reboot, systemd, `kill`?).
        Its fd, held until the stop is done; None when it cannot be taken (the stop goes on without it)."""
        try:
            fd = self._lock_fd(self.stop_lock_file, "the lock `down` holds the stack with beside a deploy or reload")
        except (OSError, StateError):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another `down` holds it: its stop is asked too
            os.close(fd)
            return None
        return fd

    @contextlib.contextmanager
    def deploying(self) -> Iterator[str | None]:
        """Taken by a deploy to the stack for as long as it runs, without waiting: yields None when taken, else who
        holds the stack (another deploy, or an `up` or `down`). Two deploys at once each pinned their image and
        SIGHUPed the host, which took whichever pin it read last; the other deploy still said its rollout
        completed, and the ledger recorded a deploy of an image the stack did not run."""
        with self._up_lock_now("deploy") as holder:
            yield holder

    @contextlib.contextmanager
    def reloading(self) -> Iterator[str | None]:
        """Taken by `goldgate reload` for as long as it runs, without waiting, as a deploy takes it: yields None when
        taken, else who holds the stack. A reload and a deploy at once would each start a service, and the one the
        host started second would have stopped the first one's before its caller heard it serve."""
        with self._up_lock_now("reload") as holder:
            yield holder

    @contextlib.contextmanager
    def _up_lock_now(self, what: str) -> Iterator[str | None]:
        """The up lock taken for `what` without waiting: None when taken (and let go on leaving), else its holder."""
        make_dirs(self.root)
        fd = self._lock_fd(self.up_lock_file)
        held = False
        try:
            held = self._take_up_lock(fd, what)
            yield None if held else self._up_lock_holder(fd)
        finally:
            if held:
                self._left_up_lock(fd)
            os.close(fd)

    @contextlib.contextmanager
    def restoring(self) -> Iterator[str | None]:
        """Taken by `goldgate dr-restore` while it replaces the stack's database, without waiting: yields None when
        taken, else who holds the stack (an `up`, a `down`, a deploy, or another restore). An `up` run meanwhile waits
        for it (`starting`): one that started the stack's host while a restore ran had it open the database the
        restore then replaced (its journal removed under it), and the stack lost jobs the backup held. The up lock,
        as a deploy takes it (a lock on a file opened for writing: flock on a directory fails on NFS)."""
        make_dirs(self.root)
        fd = self._lock_fd(self.up_lock_file)
        held = False
        try:
            held = self._take_up_lock(fd, "restore")
            yield None if held else self._up_lock_holder(fd)
        finally:
            if held:
                self._left_up_lock(fd)
            os.close(fd)

    @staticmethod
    def _take_up_lock(fd: int, holder: str) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        with contextlib.suppress(OSError):  # who holds it is advice for the waiters; the lock is the flock
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{holder} {os.getpid()}".encode(), 0)
        return True

    @staticmethod
    def _left_up_lock(fd: int) -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)

    def note_starting_host(self, pid: int) -> None:
        """Said by the `up` that holds the up lock once it started its host: a `down` run before that host takes
        its host lock (it imports for a second or two first) finds it here. Advice, checked before it is trusted."""
        with contextlib.suppress(OSError):
            fd = os.open(self.up_lock_file, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"up {os.getpid()} {pid}".encode(), 0)
            finally:
                os.close(fd)

    def deploy_pid(self) -> int | None:
        """The pid of the deploy that holds the up lock, as it wrote it (`deploying`); a killed deploy leaves its
        pid behind: check it is alive before trusting it."""
        try:
            words = (read_small_text(self.up_lock_file, 64) or "").split()
        except (OSError, StateError):
            return None
        return int(words[1]) if len(words) == 2 and words[0] == "deploy" and words[1].isascii() and words[1].isdigit() else None

    def starting_host_pid(self) -> int | None:
        """The host the `up` in progress started (`note_starting_host`); it may be gone or the note stale: check
        it before trusting it."""
        try:
            words = (read_small_text(self.up_lock_file, 64) or "").split()
        except (OSError, StateError):
            return None
        return int(words[2]) if len(words) == 3 and words[0] == "up" and words[2].isascii() and words[2].isdigit() else None

    def stop_asked_by(self) -> str | None:
        """Who of goldgate asked the stack's host to stop, read by the host when a SIGTERM or SIGINT comes: "down" while
        a `goldgate down` holds the up lock and waits for the host to end, "up" while an `up` holds it (it stops a host
        that did not come up, or one a dead host left). None for a stop from outside goldgate (a reboot, systemd,
        `kill`): its jobs in flight lost their RunPod without a word from `down`. Read from what the holder wrote
        in the lock (`_take_up_lock`), trusted only while that holder lives: a killed holder leaves its words behind."""
        if self._lock_held(self.stop_lock_file):  # a `down` beside a deploy or reload that holds the up lock
            return "down"
        try:
            words = (read_small_text(self.up_lock_file, 64) or "").split()
        except (OSError, StateError):
            return None
        if len(words) not in (2, 3) or words[0] not in ("down", "up") or not (words[1].isascii() and words[1].isdigit()):
            return None
        pid = int(words[1])
        if pid <= 1:  # 0 would ask after our own process group, 1 is init: no goldgate's
            return None
        try:
            os.kill(pid, 0)
        except PermissionError:  # alive, another user's
            pass
        except (OSError, OverflowError):  # gone (ProcessLookupError), or past the OS's range
            return None
        if not self._up_lock_held():  # words a killed holder left, its pid since reused: nobody asks
            return None
        return words[0]

    def _up_lock_held(self) -> bool:
        """Whether someone holds the up lock (flock) now: the asker holds it while it waits for the host to end."""
        return self._lock_held(self.up_lock_file)

    @staticmethod
    def _lock_held(path: Path) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            os.close(fd)  # a lock taken here is released with it
        return False

    def unsettled_jobs(self) -> tuple[list[str], int] | None:
        """The stack's jobs still queued or in progress, oldest first: (the ids of those RunPod took, the count of those
        with no RunPod id recorded). None when the database cannot be read (no file yet, or damaged): the callers
        (`down`, `up`, a host that stops) report it as advice, and the stop goes on all the same."""
        from goldgate.ops.fingerprint import connect_read_only  # goldgate.ops imports this package

        if not self.db_path.is_file():
            return None
        try:
            with contextlib.closing(connect_read_only(self.db_path, timeout=5)) as db:
                rows = db.execute("SELECT id, runpod_job_id IS NULL FROM jobs WHERE status IN ('queued', "
                                  "'in_progress') ORDER BY created_at").fetchall()
        except sqlite3.Error:
            return None
        ids = [row[0] for row in rows if not row[1]]
        return ids, len(rows) - len(ids)

    def _up_lock_holder(self, fd: int) -> str:
        """Who holds the up lock, as its holder wrote it: "`goldgate down <stack>` (pid N)"."""
        try:
            words = os.pread(fd, 64, 0).decode("ascii", errors="replace").split()
        except OSError:
            words = []
        if len(words) == 2 and words[0] == "deploy" and words[1].isascii() and words[1].isdigit():
            return f"a deploy to {self.stack} (pid {words[1]}: `goldgate deploy`, `promote`, `rollback` or `release`)"
        if len(words) == 2 and words[0] == "restore" and words[1].isascii() and words[1].isdigit():
            return f"`goldgate dr-restore {self.stack}` (pid {words[1]})"
        if len(words) == 2 and words[0] == "reload" and words[1].isascii() and words[1].isdigit():
            return f"`goldgate reload {self.stack}` (pid {words[1]})"
        if len(words) in (2, 3) and words[0] in ("up", "down") and words[1].isascii() and words[1].isdigit():
            return f"`goldgate {words[0]} {self.stack}` (pid {words[1]})"
        return f"another `goldgate up` or `down` of {self.stack}"

    def host_lock_pid(self) -> int | None:
        """The pid the last lock holder recorded (it may be gone: check it before trusting it). Read without
        locking, so a look never stops a host from taking the lock."""
        try:
            text = (read_small_text(self.lock_file, 64) or "").strip()
        except (OSError, StateError):  # not a file a host could have locked: no host holds it
            return None
        return int(text) if text.isdigit() else None

    @property
    def pin_file(self) -> Path:
        return self.root / "pin.json"

    @property
    def db_path(self) -> Path:
        return self.root / "db.sqlite"

    @property
    def db_record(self) -> Path:
        """Written by the host once it has created or migrated the stack's database: from then on, a missing
        database file is one that was lost, never a stack's first start."""
        return self.root / "database.json"

    @property
    def new_database_file(self) -> Path:
        """Created by hand to start a stack whose database was lost on a new, empty one (the next `up` removes
        it): without it, that start is refused."""
        return self.root / "start-on-a-new-database"

    def rescued_copies(self) -> list[Path]:
        """The copies a service saved of its database when the file was deleted under it, oldest first."""
        return sorted(p for p in self.root.glob(f"{self.db_path.name}.rescued-*") if p.is_file())

    def backups(self) -> list[Path]:
        return sorted((self.home / "backups" / self.stack).glob("*.sqlite"))

    def ran_before(self) -> bool:
        """Whether the stack has had a database: the host's record of it, or, in a home from before that record,
        the service's log, a rescued copy or a backup."""
        service_log = self.logs_dir / "service.jsonl"
        return (self.db_record.is_file() or (service_log.is_file() and service_log.stat().st_size > 0)
                or bool(self.rescued_copies()) or bool(self.backups()))

    def record_database(self) -> None:
        """The host's record that the stack's database exists (see db_record)."""
        if not self.db_record.is_file():
            write_json_atomic(self.db_record, {"db_path": str(self.db_path), "created_by": "goldgate up"})

    @property
    def objects_dir(self) -> Path:
        return self.root / "objects"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def check_logs(self) -> None:
        """Every log the stack's processes will append to can be opened: one that cannot (a FIFO, a directory
        in its place) is refused now, in one line, not found by a host that would hang on it or die saying
        so only in a log of its own."""
        names = {*STACK_LOGS, *(p.name for p in self.logs_dir.glob("worker-*.log"))}
        for name in sorted(names):
            open_log(self.logs_dir / name, f"goldgate up {self.stack}").close()

    def prune_worker_logs(self, max_age_s: float = WORKER_LOG_MAX_AGE_S) -> int:
        """Remove the worker logs untouched for `max_age_s` (their workers ended long ago); how many went. Run while
        no host runs, so no worker writes one. Only regular files: anything else is `check_logs`'s to refuse."""
        return remove_old_worker_logs(self.logs_dir, max_age_s)

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
        make_dirs(self.logs_dir)
        make_dirs(self.secrets_dir)
        # The stack's database (every prompt), its results and its logs are its owner's alone, as in the cloud.
        os.chmod(self.root, 0o700)
        os.chmod(self.secrets_dir, 0o700)
        for name in SECRET_NAMES:
            path = self.secret_file(name)
            # An empty (truncated) secret was never a usable one: nothing to keep, so it is made anew.
            if not (read_small_text(path, MAX_SECRET_BYTES, f"goldgate up {self.stack}") or "").strip():
                # Whole and on disk before any host hands it out: a power cut must not leave an empty one, which
                # the next `up` would replace in silence, locking out every client that holds the one handed out.
                write_text_atomic(path, secrets.token_hex(32 if name != "s3_access_key_id" else 10), private=True)
            self.secret(name)  # one edited into what no credential is: refused by `up`, before a host starts
        self.current_secrets()  # as the service's own rules, before a host starts (its service would exit)
        # Each refused here too: the service would not start on it.
        previous = {WEBHOOK_SECRET_PREVIOUS: self.webhook_secret_previous(),
                    API_TOKEN_PREVIOUS: self.api_token_previous()}
        for name in (name for name, value in previous.items() if value is not None):
            # Written by hand, often with the umask's 0644: kept as private as the secrets goldgate writes.
            fd = _open_regular(self.secret_file(name), os.O_RDONLY, 0o600,
                               "not a goldgate file (it was not read)", f"goldgate up {self.stack}")
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)

    def rotated_secrets_stamp(self) -> dict[str, Any]:
        """Which version of each file a rotation edits is there (inode, mtime, size; None: no file), never what
        it holds: the host records the one its service read, and `up` on a running stack says when they differ.
        `clients`: the same of each named client's file (secrets/clients/, goldgate/local/client_tokens.py)."""
        stamp: dict[str, Any] = {"clients": self._clients_stamp()}
        for name in ROTATED_SECRETS:
            try:
                info = os.stat(self.secret_file(name))
            except FileNotFoundError:
                stamp[name] = None
            else:
                stamp[name] = [info.st_ino, info.st_mtime_ns, info.st_size]
        return stamp

    def _clients_stamp(self) -> list[list[Any]]:
        clients = self.secrets_dir / "clients"
        try:
            names = sorted(os.listdir(clients))
        except OSError:  # none yet, or not a directory: the next start says so
            return []
        stamp: list[list[Any]] = []
        for name in names:
            with contextlib.suppress(OSError):
                info = os.lstat(clients / name)
                stamp.append([name, info.st_ino, info.st_mtime_ns, info.st_size])
        return stamp

    def secret(self, name: str) -> str:
        """The secret's value without the whitespace around it (an editor's final line break). One with a space,
        a line break, a control character or a non-ASCII letter inside is refused by its file's name, never its
        value: the API token and RunPod key go in an Authorization header, the S3 key id in a signed one, and
        httpx quoted the whole header, the secret, in the error it failed with. goldgate makes each of hex."""
        value = self._read_secret(name, optional=False)
        assert value is not None
        return value

    def optional_secret(self, name: str) -> str | None:
        """A secret only the operator writes, when needed: None when its file is missing, else read and checked
        as `secret` (an empty file is refused, not taken for a missing one: it may be a rotation's lost step)."""
        return self._read_secret(name, optional=True)

    def current_secrets(self) -> tuple[str, str]:
        """The API token and the webhook secret, as the service takes them. A pair it would refuse at its start
        (service/config.py: one too short, a hand-written one; the two equal) is refused here, by the files' names,
        never a value nor its length: a host that started its service on them saw it exit."""
        api_token, webhook_secret = self.secret("api_token"), self.secret("webhook_secret")
        problem = current_secrets_problem(api_token, webhook_secret)
        if problem is None:
            return api_token, webhook_secret
        keys, clause = problem
        paths = [str(self.secret_file(key)) for key in keys]
        apply = (f"then `goldgate down {self.stack}` and `goldgate up {self.stack}` (or `goldgate reload "
                 f"{self.stack}`, on a stack that runs) apply it")
        if clause == CURRENT_TOO_SHORT:
            one = len(paths) == 1
            raise StateError(f"{' and '.join(paths)} {'is' if one else 'are each'} {clause}, which the service "
                             f"refuses: write a long random value in {'it' if one else 'each'} (`openssl rand -hex "
                             f"32`), {apply}; or empty {'it' if one else 'them'}, and `goldgate down {self.stack}` and "
                             f"`goldgate up {self.stack}` make a new one (a deploy does not)")
        raise StateError(f"{' and '.join(paths)} hold {clause}, which the service refuses (a client holding the token "
                         "could sign RunPod's outcomes and result URLs): give each its own random value, a new one "
                         f"(`openssl rand -hex 32`) in the file you last wrote; {apply}")

    def webhook_secret_previous(self) -> str | None:
        """The webhook secret before the current one, while it is rotated; None when no rotation is under way.
        One the service would refuse at its start (service/config.py) is refused here, by its file's name."""
        return self._previous_secret(
            WEBHOOK_SECRET_PREVIOUS, "webhook_secret",
            lambda previous: previous_secret_problem(previous, self.secret("webhook_secret"), self.secret("api_token")),
            PREVIOUS_IS_CURRENT, PREVIOUS_IS_API_TOKEN, str(self.secret_file("api_token")), "the token")

    def api_token_previous(self) -> str | None:
        """The API token before the current one, while it is rotated; None when no rotation is under way. One the
        service would refuse at its start (service/config.py) is refused here, by its file's name."""
        def problem(previous: str) -> str | None:
            webhook_secrets = (self.secret("webhook_secret"), self.optional_secret(WEBHOOK_SECRET_PREVIOUS) or "")
            return previous_token_problem(previous, self.secret("api_token"), webhook_secrets)
        return self._previous_secret(
            API_TOKEN_PREVIOUS, "api_token", problem, TOKEN_PREVIOUS_IS_CURRENT, TOKEN_PREVIOUS_IS_WEBHOOK_SECRET,
            f"{self.secret_file('webhook_secret')} or {self.secret_file(WEBHOOK_SECRET_PREVIOUS)}", "the old token")

    def _previous_secret(self, name: str, current_name: str, problem_of: Callable[[str], str | None],
                         is_current: str, is_other: str, other_files: str, holder: str) -> str | None:
        """The rotated secret `name` (what `current_name` held before), or None when no rotation is under way.
        `problem_of` is the service's own rule for it (service/config.py), whose clauses are PREVIOUS_TOO_SHORT,
        `is_current` and `is_other` (equal to a secret of the other kind, held in `other_files`, so `holder`, a
        client, could sign): each is refused by the file's name, never its value, as the service would refuse it.
        A file that cannot be read as one (not a regular file, not UTF-8, empty, a space inside) is refused the
        same way: `goldgate up` alone never fixes it (goldgate makes no such file), so the advice is to fix or
        remove it, and what removing it ends."""
        path, current = self.secret_file(name), self.secret_file(current_name)
        short = SECRET_WORDS[current_name][1]
        # Removing the file is the way out of a rotation, and it changes what the service accepts: said each time.
        fix = (f"fix it (the old {short}, alone on one line) or remove it, then `goldgate down {self.stack}` and "
               f"`goldgate up {self.stack}` (or `goldgate reload {self.stack}`) apply it; removing it ends the "
               f"rotation: the previous {short} is no longer accepted ({_ROTATION_ENDS[name]})")
        try:
            previous = self.optional_secret(name)
        except StateError as exc:
            raise StateError(f"{_first_clause(str(exc))}: {fix}") from None
        except OSError as exc:   # no permission: a file written by another user
            raise StateError(f"{path} cannot be read ({describe(exc)}): {fix}") from None
        if previous is None:
            return None
        problem = problem_of(previous)
        if problem == PREVIOUS_TOO_SHORT:  # never the value, nor its length
            raise StateError(f"{path} {problem}, which the service refuses: {fix}")
        if problem == is_current:
            raise StateError(f"{path} {problem} ({current}): to rotate, copy the old {short} into {path.name} and "
                             f"write a new random one into {current.name} (`openssl rand -hex 32`); otherwise "
                             f"{fix}")
        if problem == is_other:
            raise StateError(f"{path} {problem} ({other_files}), which the service refuses (a client holding "
                             f"{holder} could sign RunPod's outcomes and result URLs): {fix}")
        return previous

    def _read_secret(self, name: str, optional: bool) -> str | None:
        path = self.secret_file(name)
        text = read_small_text(path, MAX_SECRET_BYTES, f"goldgate up {self.stack}")
        if text is None:
            if optional:
                return None
            raise StateError(f"stack {self.stack} has no {name} yet; run `goldgate up {self.stack}`")
        value = bearer_token(text)
        what, short = SECRET_WORDS.get(name, (name, "value"))
        if value == "":
            if optional:  # goldgate makes no such file, so it cannot make it anew either
                raise StateError(f"{path} ({name}) is empty: write the {what} in it, or delete it when no rotation "
                                 f"is under way; then `goldgate down {self.stack}` and `goldgate up {self.stack}`")
            # An empty token would be sent (or accepted) as a credential: refuse it by name. Only a start makes a
            # new one: `up` alone leaves a running stack as it is (and said to fix the file first), so the advice
            # names the stop too, which changes nothing on a stack that is down.
            raise EmptySecret(f"{path} ({name}) is empty; `goldgate down {self.stack} && goldgate up {self.stack}` "
                              f"makes a new one (clients then need the new {what})")
        if value is None:
            remake = ("" if optional else f", or empty the file and run `goldgate down {self.stack}` and "
                      f"`goldgate up {self.stack}` to make a new one")
            raise StateError(f"{path} holds a character no {what} has (a space, a line break or a non-ASCII letter "
                             f"inside it): write the {short} on one line{remake}")
        return value

    def service_config(self) -> dict[str, Any] | None:
        """The config the stack's host gave its running service (`service.json`, written at each service start
        from the stacks file as it was when the host started), or None when there is none or it cannot be read.
        It says what the stack runs now: an edit of the stacks file reaches it only at the next `up`. Read as every
        state file is: a FIFO there would block for ever, a huge file is not read."""
        try:
            config = json.loads(read_small_text(self.root / "service.json", MAX_STATE_BYTES) or "null")
        except (StateError, OSError, ValueError, RecursionError):
            return None
        return config if isinstance(config, dict) else None

    def pinned_image(self) -> str | None:
        pin = self.read_pin()
        return pin.get("image") if isinstance(pin, dict) else None

    def read_pin(self) -> Any | None:
        """pin.json's record, or None when there is none. An empty or torn one (a power cut, an older goldgate's
        write) is refused with what to do: not "remove it", which left PROD with no image for its next `up`, but
        where the image it held is found again, and that it goes aside before the command that pins it."""
        text = read_small_text(self.pin_file, MAX_STATE_BYTES)
        if text is None:
            return None
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            what = "empty" if not text.strip() else f"corrupt ({_json_problem(exc)})"
        # Aside first, whether the stack runs or not: the deploy and rollback that pin again read the pin they
        # replace, and refused with this very advice while the file was in place. Short: `goldgate` cuts an error
        # line past 600 characters in the middle, where the advice is, and the path (the home's, any length) comes
        # first. With a home path of 120 characters the whole line still fits.
        raise StateError(f"{self.pin_file} is {what}: it recorded the image {self.stack} runs. Move "
                         f"{self.pin_file.name} aside (no command reads past it), then {self._pin_again()}")

    def _pin_again(self) -> str:
        """`read_pin`'s way back to the image a damaged pin recorded, for the stack's role. PROD takes an image only
        through promote and rollback (`deploy prod` is refused whatever its pin), and a `rollback --to` a verified
        release pins it on a PROD with no pin, serving it or nothing; `status` names the image the host serves once
        the pin is aside, with the command that pins it."""
        stack = self.stack
        if self.role == "prod":
            return ("pin that image again with `goldgate rollback --to <ref>` (PROD takes no `goldgate deploy`): "
                    "`goldgate status` then names the image its host serves, `goldgate history` its last promotion "
                    f"or rollback. If it is down, `goldgate up {stack}` first (it starts on no image)")
        if self.role == "staging":
            return (f"pin that image again with `goldgate deploy {stack} --image <ref>`: `goldgate status` then names "
                    "the image its host serves, `goldgate history` its last deploy. If it is down, `goldgate up "
                    f"{stack}` first (it starts on the working tree's image)")
        return (f"pin that image again with the stack up: `goldgate deploy {stack} --image <ref>` for a STAGING "
                "stack, `goldgate rollback --to <ref>` for PROD (which takes no `goldgate deploy`); `goldgate "
                "history` shows its last deploy, promotion or rollback")

    def read_state(self) -> Any | None:
        """state.json's record, or None when there is none. An empty one is None too: a runtime record only, which a
        host killed while an older goldgate wrote it in place, or a power cut after its rename, left empty; no live
        host shows one (each writes it whole). Refused, it blocked `up` and `down` until removed by hand.
        `unreadable_state` says so, for the command that removes it. One that holds anything else that is no JSON
        is refused as ever (`read_json`): no writer of goldgate's leaves that."""
        return self._state_record()[0]

    def unreadable_state(self) -> str | None:
        """"it is empty" for an empty state.json (a dead host's leftover), else None."""
        return self._state_record()[1]

    def _state_record(self) -> tuple[Any | None, str | None]:
        text = read_small_text(self.state_file, MAX_STATE_BYTES)
        if text is None:
            return None, None
        if not text.strip():
            return None, "it is empty"
        try:
            return json.loads(text), None
        except (ValueError, RecursionError) as exc:
            # Removed alone, it hid a host that still runs: `status` said down, and `up` "already starting"
            # for good. `down` finds that host by its lock and stops it; `up` then starts the stack anew.
            raise StateError(f"{self.state_file} is corrupt ({str(exc)[:200]}); remove it, then run "
                             f"`goldgate down {self.stack} && goldgate up {self.stack}` (a host that still runs "
                             "is found by its lock and stopped)") from None

    def pin(self, image: str, reason: str) -> None:
        write_json_atomic(self.pin_file, {"image": image, "reason": reason, "pinned_at": now_rfc3339()})
