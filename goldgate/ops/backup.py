"""Local D1 backups: an online SQLite backup with a manifest, and a restore that verifies before it trusts.

A backup is `<home>/backups/<stack>/<stamp>.sqlite` plus `<stamp>.manifest.json` holding the file's
size and SHA-256 and the fingerprint of the source taken in the same read transaction as the copy.
A restore refuses a backup whose size or hash differs from its manifest (truncated, bit rot, edited),
that fails SQLite's integrity check, or whose content differs from the fingerprint.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError
from goldgate.files import make_dirs
from goldgate.local.state import write_text_atomic
from goldgate.ops.fingerprint import Fingerprint, SqliteSource, connect_read_only, fingerprint

MANIFEST_FORMAT = "goldgate.d1-backup.v1"


class BackupError(GoldgateError):
    """A backup could not be taken (no source database, no space, ...)."""


class BackupRefused(GoldgateError):
    """A backup failed verification and must not be restored; the message says what is wrong with it."""


class RestoreFailed(GoldgateError):
    """A restore could not write its copy (no space, no permission); the backup was not at fault."""


def unreadable_database(exc: sqlite3.Error) -> bool:
    """True when SQLite says the file it read is not (or no longer) a database, rather than a write failing."""
    return str(getattr(exc, "sqlite_errorname", "")).startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT"))


@dataclass(frozen=True)
class BackupManifest:
    stack: str
    kind: str                   # "sqlite" (local) or "d1-sql" (a D1 export)
    file: str                   # the backup file's name, next to the manifest
    bytes: int
    sha256: str
    created_at: str
    source: str
    fingerprint: Fingerprint
    format: str = MANIFEST_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "stack": self.stack, "kind": self.kind, "file": self.file,
                "bytes": self.bytes, "sha256": self.sha256, "created_at": self.created_at, "source": self.source,
                "fingerprint": self.fingerprint.to_dict()}

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> BackupManifest:
        try:
            if raw.get("format") != MANIFEST_FORMAT:
                raise BackupRefused(f"{where} is not a goldgate backup manifest (format {raw.get('format')!r})")
            return cls(stack=str(raw["stack"]), kind=str(raw["kind"]), file=str(raw["file"]),
                       bytes=int(raw["bytes"]), sha256=str(raw["sha256"]), created_at=str(raw["created_at"]),
                       source=str(raw["source"]), fingerprint=Fingerprint.from_dict(raw["fingerprint"]))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:  # Overflow: int(1e999)
            raise BackupRefused(f"{where} is missing or has a malformed field ({exc}); it cannot vouch for the "
                                "backup: take a new one") from None


def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")


def iso(now: datetime) -> str:
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def file_sha256(path: Path, stop: threading.Event | None = None) -> str:
    """The file's SHA-256; "" when `stop` is set before the end (its reader went on without it)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            if stop is not None and stop.is_set():
                return ""
            digest.update(chunk)
    return digest.hexdigest()


class _Beside:
    """`work(*args)` in a thread of its own while the caller goes on: SQLite and hashlib let go of the GIL as
    they work, so on two cores a drill's hashing or integrity check costs no time beside its checksums.
    `result()` waits and raises what `work` raised; `stop()` asks `work` to end early (through `on_stop`) and
    waits for it. A caller interrupted while `result()` waits (Ctrl-C) stops `work` too: it is never left
    running. Both wait on an Event of their own, not on join(): a join() a signal interrupted may have marked
    the thread ended while it runs on (Python 3.11), and the next join() then returns at once."""

    def __init__(self, work: Callable[..., Any], *args: Any,
                 on_stop: Callable[[], None] = lambda: None) -> None:
        self._out: list[tuple[bool, Any]] = []
        self._on_stop = on_stop
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(work, args), name="goldgate-dr", daemon=True)
        self._thread.start()

    def _run(self, work: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._out.append((True, work(*args)))
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller by result(), raised there
            self._out.append((False, exc))
        finally:
            self._done.set()

    def result(self) -> Any:
        try:
            self._done.wait()
        except BaseException:  # interrupted while waiting: `work` is asked to end, and waited for
            self.stop()
            raise
        self._thread.join()
        done, value = self._out[0]
        if not done:
            raise value
        return value

    def stop(self) -> None:
        self._on_stop()
        self._done.wait()
        self._thread.join()


def _hash_beside(path: Path) -> _Beside:
    stop = threading.Event()
    return _Beside(file_sha256, path, stop, on_stop=stop.set)


def manifest_path(backup: Path) -> Path:
    if not backup.name:  # `/` or `.`: a directory, no backup file to find a manifest beside
        raise BackupRefused(f"{str(backup)!r} names no backup file: name one, <home>/backups/<stack>/<stamp>.sqlite "
                            "(its .manifest.json beside it)")
    return backup.with_name(backup.name.rsplit(".", 1)[0] + ".manifest.json")


def private_dir(directory: Path) -> Path:
    """`directory`, made if missing, that only its owner can list or enter: a backup, a drill's restore scratch and a
    D1 export are each a full copy of the stack's database (every prompt), whose own directory is 0700. One an older
    goldgate made 0755 is closed too, which hides the files it already holds."""
    make_dirs(directory.parent)  # its parents (`backups/`, `drills/`) writable by their owner only, whatever the umask
    directory.mkdir(exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    return directory


def create_private(path: Path) -> None:
    """An empty file at `path` only its owner can read, for SQLite to write a copy into (it would create one by the
    umask, 0644): an earlier file there is emptied and closed to others too."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.chmod(path, 0o600)


def take_backup(source: Path, dest_dir: Path, stack: str,
                clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> tuple[Path, BackupManifest]:
    """Copy `source` with SQLite's online backup API while it may be in use; write the manifest. The directory is
    the owner's only, the backup and its manifest are 0600."""
    if not source.is_file():
        raise BackupError(f"no database at {source}: check the stack name; a stack never brought up here has none "
                          f"until `goldgate up {stack}`; one whose file was deleted is not started anew (`goldgate "
                          "up` refuses): restore it, docs/D1_DISASTER_RECOVERY.md, \"The database file was deleted\"")
    private_dir(dest_dir)
    stamp = utc_stamp(clock())
    target = dest_dir / f"{stamp}.sqlite"
    partial = target.with_suffix(".sqlite.partial")
    src = connect_read_only(source, isolation_level=None)
    try:
        # One read transaction: the copy and the fingerprint see the same snapshot of the data.
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        create_private(partial)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            # A self-contained file: a copy left in WAL mode grows -wal/-shm files beside it whenever it is
            # read. (A restore is switched back to WAL by the service when it opens it.)
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
        # The copy is whole: its sha256 is read while the source's checksums are taken.
        copy_sha256 = _hash_beside(partial)
        try:
            print_ = fingerprint(SqliteSource(src))
            src.execute("COMMIT")
        except BaseException:
            copy_sha256.stop()
            raise
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        # A damaged database: no backup of it can help, and the drill is not the way out. A backup from before is.
        fix = (f": the stack's database is damaged; nothing was backed up. Restore {stack} from a backup taken "
               f"before (`goldgate dr-restore {stack} --list`, docs/D1_DISASTER_RECOVERY.md, \"Local\")"
               if unreadable_database(exc) else "")
        raise BackupError(f"backing up {source} failed: {exc}{fix}") from None
    except BaseException:  # interrupted (Ctrl-C, the scheduler's stop): no copy the size of the database stays
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    try:
        sha256 = copy_sha256.result()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if not print_.row_counts:
        # An empty or zero-length file (a truncated database, the wrong path): its backup would "verify"
        # while holding nothing to recover.
        partial.unlink(missing_ok=True)
        raise BackupError(f"{source} holds no tables: it is not the stack's migrated database (empty or "
                          f"truncated?); nothing was backed up. Check the file, or restore {stack} from an "
                          "earlier backup")
    os.replace(partial, target)
    manifest = BackupManifest(stack=stack, kind="sqlite", file=target.name, bytes=target.stat().st_size,
                              sha256=sha256, created_at=iso(clock()), source=str(source),
                              fingerprint=print_)
    # Whole and on disk (temp, fsync, rename, directory fsync, which also makes the copy's rename above durable):
    # a manifest written in place could come back empty after a power cut, and the newest backup was then refused.
    write_text_atomic(manifest_path(target), json.dumps(manifest.to_dict(), indent=2, sort_keys=True), private=True)
    return target, manifest


# `<stamp>.sqlite`, `<stamp>.manifest.json` and a killed backup's `<stamp>.sqlite.partial`, as take_backup names them.
_BACKUP_FILE = re.compile(r"(\d{8}T\d{6}\.\d{6}Z)\.(sqlite|manifest\.json|sqlite\.partial)")


# A stretch with no backup this much longer than the retention window is taken for a clock that stepped ahead (as
# `goldgate prune` takes a stretch of its keep days + MAX_QUIET_DAYS with no job created, goldgate.ops.retention).
MAX_QUIET_DAYS = 366


def clock_jump(times: Iterable[datetime], now: datetime, window: timedelta) -> tuple[datetime, datetime] | None:
    """The latest gap longer than `window` between consecutive `times` up to `now`, `now` the last of them: (the time
    before the gap, the time after it), or None. Every expiry counts back from now, so a clock that stepped years
    ahead would delete everything but what it wrote itself; the times an expiry deletes by are the only evidence of
    the real date, as they were written before the step. Times past `now` (written while a clock was ahead, before
    it was set right) are no evidence of the present and are passed over. A gap stays a gap after the first run
    under a wrong clock has written a time after it: the next run is refused as well, not let through."""
    points = sorted(t for t in times if t <= now) + [now]
    found = None
    for before, after in itertools.pairwise(points):
        if after - before > window:
            found = (before, after)
    return found


@dataclass(frozen=True)
class PrunedBackups:
    deleted: list[str]       # file names removed
    failed: list[str]        # "<name> (<reason>)" of files that could not be removed
    kept_newest: str | None  # the newest backup, kept whatever its age
    refused: str | None = None  # why nothing was deleted (a clock far ahead), and what to do; None when pruned
    kept_fuller: str | None = None  # why a backup due to go was kept: it holds more jobs than the newest one


def prune_backups(directory: Path, retention_days: int, now: datetime,
                  pruned_at: datetime | None = None) -> PrunedBackups:
    """Delete the backups in `directory` taken more than `retention_days` before `now` (each `<stamp>.sqlite` with
    its manifest, by the UTC stamp take_backup gave them), as R2's lifecycle rule expires `backups/` in the cloud;
    but never the newest backup that has its manifest, whatever its age: a stack whose drills stopped keeps the
    last one it can restore. Files named otherwise (an operator's copies) are left alone.

    Nor, whatever its age, the backup due to go that holds the most jobs, when that is more than the newest backup
    holds (manifests' row counts): jobs were lost (or deleted) since it was taken, and the newest backup, taken after
    the loss, cannot bring them back. A drill run after a `DELETE` by mistake otherwise deleted the last backup that
    held the rows. At most one backup is kept so; `kept_fuller` names it and why. Not when the stack's last prune
    (`pruned_at`, its record's time) ran after that backup was taken: a prune, on a schedule, deletes jobs every time,
    and every drill would keep one backup more and say jobs were lost.

    Nothing is deleted when a backup due to go is followed by no other for more than `retention_days` +
    MAX_QUIET_DAYS (see clock_jump): a machine whose clock reads ten years ahead deleted every backup but the one it
    had just taken. `refused` then says why and what to do."""
    found: dict[str, set[str]] = {}
    if directory.is_dir():
        for path in directory.iterdir():
            match = _BACKUP_FILE.fullmatch(path.name)
            if match:
                found.setdefault(match.group(1), set()).add(match.group(2))
    restorable = sorted(stamp for stamp, kinds in found.items() if {"sqlite", "manifest.json"} <= kinds)
    newest = restorable[-1] if restorable else None
    cutoff = now - timedelta(days=retention_days)
    taken = {stamp: when for stamp in found if (when := parse_stamp(stamp)) is not None}
    due = [stamp for stamp in sorted(taken) if stamp != newest and taken[stamp] < cutoff]
    jump = clock_jump(taken.values(), now, timedelta(days=retention_days + MAX_QUIET_DAYS)) if due else None
    kept_fuller = None
    # Only a backup taken since the last prune: the jobs an older one holds more are the ones a prune deleted since
    # (a fuller one before the prune must not hide one after it that holds jobs a mistaken DELETE took).
    fuller = _fullest_due(directory, [stamp for stamp in due if stamp in restorable
                                      and (pruned_at is None or taken[stamp] >= pruned_at)], newest)
    if fuller is not None:
        stamp, jobs, newest_jobs = fuller
        due = [other for other in due if other != stamp]
        kept_fuller = (f"{stamp}.sqlite, taken more than {retention_days} days ago, was kept: it holds {jobs} jobs, "
                       f"the newest backup ({newest}.sqlite) {newest_jobs}, so jobs were lost or deleted since it was "
                       "taken and only it may still hold them. If they were deleted on purpose (`goldgate prune`), "
                       f"delete it by hand from {directory} once no restore needs it")
    refused = None
    if jump is not None:  # those taken after the gap were stamped by the clock that reads now: they go as usual
        due = [stamp for stamp in due if taken[stamp] >= jump[1]]
        refused = _clock_refusal(directory, retention_days, now, *jump)
    deleted: list[str] = []
    failed: list[str] = []
    for stamp in due:
        # The backup before its manifest: an interrupted prune leaves a manifest without a backup, which
        # restores nothing and goes at the next prune, never a backup without its manifest.
        for kind in ("sqlite.partial", "sqlite", "manifest.json"):
            if kind in found[stamp]:
                name = f"{stamp}.{kind}"
                try:
                    (directory / name).unlink(missing_ok=True)
                    deleted.append(name)
                except OSError as exc:
                    failed.append(f"{name} ({exc.strerror or exc})")
                    break  # its manifest stays with it
    return PrunedBackups(deleted=deleted, failed=failed, kept_newest=f"{newest}.sqlite" if newest else None,
                         refused=refused, kept_fuller=kept_fuller)


def backup_files(directory: Path) -> list[Path]:
    """The backups take_backup wrote in `directory` (`<stamp>.sqlite`), oldest first; none for a missing directory."""
    if not directory.is_dir():
        return []
    return sorted((path for path in directory.iterdir() if (found := _BACKUP_FILE.fullmatch(path.name))
                   and found.group(2) == "sqlite" and parse_stamp(found.group(1)) is not None),
                  key=lambda path: path.name)


def backup_jobs(backup: Path) -> int | None:
    """How many jobs the backup's manifest recorded; None when its manifest cannot be read."""
    try:
        jobs = load_manifest(backup).fingerprint.row_counts.get("jobs")
    except (BackupRefused, OSError):
        return None
    return jobs if isinstance(jobs, int) else None


def _fullest_due(directory: Path, due: list[str], newest: str | None) -> tuple[str, int, int] | None:
    """(stamp, its jobs, the newest's jobs) of the backup among `due` holding the most jobs (the newest of equals),
    when that is more than the newest backup holds; None otherwise, or when the newest's count is unknown."""
    if newest is None or not due:
        return None
    newest_jobs = backup_jobs(directory / f"{newest}.sqlite")
    if newest_jobs is None:
        return None
    best: tuple[str, int] | None = None
    for stamp in due:  # oldest first: a later one holding as many replaces an earlier
        jobs = backup_jobs(directory / f"{stamp}.sqlite")
        if jobs is not None and jobs > newest_jobs and (best is None or jobs >= best[1]):
            best = (stamp, jobs)
    return (best[0], best[1], newest_jobs) if best is not None else None


def _clock_refusal(directory: Path, retention_days: int, now: datetime, before: datetime, after: datetime) -> str:
    days = (after - before).days
    then = "this machine's clock reads" if after == now else "the next backup is of"
    return (f"no backup taken up to {iso(before)} was deleted: it is the last for {days} days ({then} {iso(after)}), "
            f"more than storage.backup_retention_days ({retention_days}) + {MAX_QUIET_DAYS}, as a clock stepped "
            f"ahead would make it. Set the clock right (`date -u`) and drill again; if it was right all along (no "
            f"drill ran for {days} days), delete the backups up to {utc_stamp(before)}.sqlite in {directory} by hand")


def parse_stamp(stamp: str) -> datetime | None:
    """The UTC time of a stamp utc_stamp made (a drill record's, to the millisecond, too); None for a name that only
    looks like one."""
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
    except ValueError:  # 20261399T..., a name that only looks like a stamp
        return None


MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # a manifest of thousands of tables is a few hundred KB


def load_manifest(backup: Path) -> BackupManifest:
    path = manifest_path(backup)
    try:
        if path.exists() and not path.is_file():
            # A FIFO waits for a writer forever, /dev/zero never ends: neither is a manifest, so neither is read.
            raise BackupRefused(f"manifest {path} is not a file (a directory, FIFO or device); it was not read: "
                                "take a new backup")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise BackupRefused(f"manifest {path} is {path.stat().st_size} bytes, more than a goldgate manifest "
                                f"ever holds ({MAX_MANIFEST_BYTES}); it was not read: take a new backup")
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        # A mistyped path, or the manifest named instead of its backup: not a backup to give up on.
        if backup.name.endswith(".manifest.json") and backup.is_file():
            raise BackupRefused(f"{backup} is a backup's manifest: name the backup itself, "
                                f"{backup.name.removesuffix('.manifest.json')}.sqlite beside it") from None
        if not backup.exists():
            raise BackupRefused(f"no backup at {backup}: check the path (backups are under "
                                "<home>/backups/<stack>/<stamp>.sqlite)") from None
        raise BackupRefused(f"backup {backup} has no manifest ({path.name}); without it the backup cannot be "
                            "verified: take a new backup") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # Recursion: nesting too deep to parse
        raise BackupRefused(f"manifest {path} is not valid JSON ({str(exc)[:200]}); take a new backup") from None
    return BackupManifest.from_dict(raw, str(path))


def verify_file(backup: Path, manifest: BackupManifest) -> None:
    """Size and SHA-256 against the manifest: catches truncation and any changed byte."""
    _verify_size(backup, manifest)
    refusal = _sha256_refusal(backup, manifest, file_sha256(backup))
    if refusal is not None:
        raise refusal


def _verify_size(backup: Path, manifest: BackupManifest) -> None:
    if not backup.is_file():
        raise BackupRefused(f"backup file {backup} does not exist")
    size = backup.stat().st_size
    if size != manifest.bytes:
        raise BackupRefused(f"backup {backup.name} is {size} bytes but its manifest says {manifest.bytes}: it is "
                            f"{'truncated' if size < manifest.bytes else 'changed'}; refusing to restore it "
                            "(use an older backup or take a new one)")


def _sha256_refusal(backup: Path, manifest: BackupManifest, digest: str) -> BackupRefused | None:
    if digest == manifest.sha256:
        return None
    return BackupRefused(f"backup {backup.name} has sha256 {digest[:16]}… but its manifest says "
                         f"{manifest.sha256[:16]}…: the file is corrupted; refusing to restore it "
                         "(use an older backup or take a new one)")


@dataclass(frozen=True)
class RestoreOutcome:
    target: Path
    fingerprint: Fingerprint
    seconds: float


def restore_backup(backup: Path, manifest: BackupManifest, target: Path) -> RestoreOutcome:
    """Restore into `target` (a fresh file, or a stopped stack's database) and verify it; raise BackupRefused."""
    started = time.perf_counter()
    _verify_size(backup, manifest)
    partial = target.with_name(target.name + ".restoring")
    partial.unlink(missing_ok=True)
    # The backup's sha256 is read while SQLite copies the same file (the second reader finds it in the page
    # cache). A changed byte still refuses the backup, whatever its copy made of it, before the copy is used.
    backup_sha256 = _hash_beside(backup)
    try:
        got = _copy_and_verify(backup, partial)
    except Exception:
        refusal = _sha256_refusal(backup, manifest, backup_sha256.result())
        if refusal is not None:
            raise refusal from None
        raise
    except BaseException:  # interrupted (Ctrl-C): the hash is not waited for
        backup_sha256.stop()
        raise
    try:
        refusal = _sha256_refusal(backup, manifest, backup_sha256.result())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if refusal is not None:
        partial.unlink(missing_ok=True)
        raise refusal
    problems = got.differences(manifest.fingerprint)
    if problems:
        partial.unlink(missing_ok=True)
        raise BackupRefused(f"backup {backup.name} does not hold what its manifest recorded: "
                            + "; ".join(problems[:5]) + "; refusing to restore it")
    os.replace(partial, target)
    return RestoreOutcome(target=target, fingerprint=got, seconds=time.perf_counter() - started)


def _copy_and_verify(backup: Path, partial: Path) -> Fingerprint:
    """Copy `backup` into `partial` by SQLite's backup API, check its integrity and fingerprint it; on failure
    no copy stays."""
    try:
        create_private(partial)  # a full copy of the database, as the backup is
        src = connect_read_only(backup)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            return _checked_fingerprint(backup, partial, dst)
        finally:
            src.close()
            dst.close()
    except OSError as exc:  # the copy's file could not be made: its directory, not the backup
        partial.unlink(missing_ok=True)
        raise _unwritable_copy(partial, backup, exc.strerror or exc) from None
    except sqlite3.DatabaseError as exc:
        partial.unlink(missing_ok=True)
        if not unreadable_database(exc):  # the disk or directory of the copy, not the backup
            raise _unwritable_copy(partial, backup, exc) from None
        raise BackupRefused(f"backup {backup.name} is not a readable SQLite database ({exc}); refusing to "
                            "restore it") from None
    except BaseException:  # refused, or interrupted (Ctrl-C): a partial copy the size of the database stays not
        partial.unlink(missing_ok=True)
        raise


def _checked_fingerprint(backup: Path, partial: Path, dst: sqlite3.Connection) -> Fingerprint:
    """SQLite's integrity check of the copy, on a connection of its own, beside its fingerprint: two readers
    of a file nothing writes (a million jobs: the check alone takes as long as the checksums). A copy failing
    the check is refused for that first, as when the check ran before the checksums."""
    checker = sqlite3.connect(partial, check_same_thread=False)
    stop = threading.Event()
    # Asked between steps whether to go on: an interrupt() sent before the check's first step goes unheard.
    checker.set_progress_handler(stop.is_set, 100_000)
    check = None
    try:
        check = _Beside(_integrity_check, checker, on_stop=stop.set)
        try:
            got = fingerprint(SqliteSource(dst))
        except Exception:
            _refuse_damaged(backup, check.result())
            raise
        _refuse_damaged(backup, check.result())
        return got
    finally:
        if check is not None:  # ended already, or interrupted (Ctrl-C): then stopped, not waited for
            check.stop()
        checker.close()  # never under the check's feet


def _integrity_check(conn: sqlite3.Connection) -> list[str]:
    return [str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall()]


def _refuse_damaged(backup: Path, check: list[str]) -> None:
    if check != ["ok"]:
        raise BackupRefused(f"backup {backup.name} fails SQLite's integrity check ({'; '.join(check[:3])}); "
                            "refusing to restore it") from None


def _unwritable_copy(partial: Path, backup: Path, reason: object) -> RestoreFailed:
    return RestoreFailed(f"cannot write the restored copy {partial} ({reason}); free space or fix the permissions "
                         f"of {partial.parent} and run the restore again (backup {backup.name} was not judged; "
                         "nothing was replaced)")
