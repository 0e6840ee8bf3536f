"""The D1 disaster-recovery drill: back up, restore into a fresh database, verify, measure, record.

`run_local_drill` works on a local stack's SQLite "D1"; `run_cloud_drill` on a real D1 through
the REST API (export to a local file -> R2 `backups/` -> read back from R2 to a file -> import into a
scratch D1 -> verify -> delete the scratch and the local files), streaming the dump between them.
Each records its result at `<home>/drills/<stack>/latest-<target>.json` (and a dated copy), which the
readiness checklist of that target reads. RPO achieved = backup time minus the newest write the backup holds;
RTO achieved = time from starting the restore to a verified copy.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from goldgate.cloudflare.d1 import D1Client, run_dump
from goldgate.cloudflare.r2 import R2Admin
from goldgate.errors import GoldgateError, StateError
from goldgate.local.state import read_record, write_json_atomic
from goldgate.migrations import discover as discover_migrations
from goldgate.ops.backup import (
    MAX_QUIET_DAYS,
    BackupError,
    BackupManifest,
    BackupRefused,
    RestoreFailed,
    backup_files,
    backup_jobs,
    clock_jump,
    create_private,
    iso,
    load_manifest,
    parse_stamp,
    private_dir,
    prune_backups,
    restore_backup,
    take_backup,
    unreadable_database,
    utc_stamp,
)
from goldgate.ops.fingerprint import (
    D1Source,
    Fingerprint,
    SqliteSource,
    fingerprint,
    parse_time,
    schema_sha256,
    schema_version,
    tables,
)
from goldgate.spec import DEFAULT_BACKUP_RETENTION_DAYS, show
from service.jobs import TERMINAL
from service.sqltext import file_lines

Progress = Callable[[str], None]
DRILL_FORMAT = "goldgate.dr-drill.v1"
MAX_DRILL_RECORD_BYTES = 4 * 1024 * 1024  # a record lists a few tables and notes: a few KB
# The longest D1 name goldgate creates: Cloudflare documents no length limit, the D1 stand-in enforces 64, and a
# drill's prefix (the stack's database name, up to 41 characters, then `-drill`) leaves 17 for what follows.
MAX_SCRATCH_NAME = 64


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class DrillResult:
    stack: str
    target: str                  # "local" or "cloud"
    passed: bool
    started_at: str
    finished_at: str
    backup_s: float | None = None
    restore_s: float | None = None
    rto_s: float | None = None
    rpo_s: float | None = None
    last_write_at: str | None = None
    backup: str | None = None
    backup_bytes: int | None = None
    schema_version: list[str] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    verified: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    database_id: str | None = None  # the D1 database a cloud drill exported
    # A local drill: the rows added, deleted and changed since the backup before it, by primary key and content
    # (_changes_since_previous); what the RPO figure, the age of the newest `*_at` value, cannot see.
    changes_since_previous: dict[str, Any] | None = None
    format: str = DRILL_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def drills_dir(home: Path, stack: str) -> Path:
    return home / "drills" / stack


def latest_path(home: Path, stack: str, target: str) -> Path:
    # One per target: a local drill proves nothing about the D1 backups, and must not replace the record of the
    # cloud drill the cloud checklist reads (nor the other way round).
    return drills_dir(home, stack) / f"latest-{target}.json"


def record(home: Path, result: DrillResult) -> Path:
    directory = private_dir(drills_dir(home, result.stack))
    stamp = result.started_at.replace(":", "").replace("-", "")
    # Each write through a temporary file of its own: two drills of a stack at once (the scheduled one and an
    # operator's) shared one, so one crashed on the file the other had renamed, or put its half-written record in
    # place of the latest, which the checklist then read as damaged.
    write_json_atomic(directory / f"{stamp}-{result.target}.json", result.to_dict(), private=True)
    latest = latest_path(home, result.stack, result.target)
    write_json_atomic(latest, result.to_dict(), private=True)
    return latest


def latest_drill(home: Path, stack: str, target: str) -> dict[str, Any] | None:
    """The last recorded drill of a stack on `target` (local or cloud), or None; a damaged record is an error,
    not silence."""
    path = latest_path(home, stack, target)
    if not path.exists() and (drills_dir(home, stack) / "latest.json").exists():
        path = drills_dir(home, stack) / "latest.json"  # written before each target kept its own record
    again = f"goldgate dr-drill {stack}" + (" --target cloud --database-id <uuid>" if target == "cloud" else "")
    raw = read_record(path, MAX_DRILL_RECORD_BYTES, again)
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("format") != DRILL_FORMAT:
        raise StateError(f"{path} is not a goldgate drill record; run `{again}` again")
    if raw.get("target") != target:
        if path.name == "latest.json":  # the old shared record holds the other target's drill: no evidence here
            return None
        raise StateError(f"{path} records a drill on the {show(raw.get('target'))} target, not {target}: it is not "
                         f"evidence (copied by hand?); run `{again}`")
    return raw


def _rpo(backup_at: datetime, last_write: str | None) -> float | None:
    when = parse_time(last_write)
    return max(0.0, (backup_at - when).total_seconds()) if when else None


def run_local_drill(stack: str, source: Path, home: Path, progress: Progress = _quiet,
                    keep_backup: bool = True,
                    backup_retention_days: int = DEFAULT_BACKUP_RETENTION_DAYS,
                    clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> DrillResult:
    """Back up `source`, restore into a scratch file, verify, remove the scratch, record the result.

    A drill that passed then deletes the stack's backups and dated drill records older than
    `backup_retention_days` (the stack's storage.backup_retention_days), never the newest; a failed one
    deletes nothing, so the backups before a bad one stay; nor does one whose clock reads far past the backups
    (backup.prune_backups): a note says why. `clock` is this machine's (a test's own)."""
    started = clock()
    backup_dir = home / "backups" / stack
    scratch = home / "drills" / stack / f"scratch-{utc_stamp(started)}.sqlite"
    result: dict[str, Any] = {"stack": stack, "target": "local", "started_at": iso(started)}
    try:
        progress(f"{stack}: online backup of {source}")
        t0 = time.perf_counter()
        backup, manifest = take_backup(source, backup_dir, stack, clock=clock)
        backup_s = time.perf_counter() - t0
        backup_at = clock()
        result.update(backup=str(backup), backup_bytes=manifest.bytes, backup_s=round(backup_s, 3),
                      last_write_at=manifest.fingerprint.last_write_at,
                      rpo_s=_rpo(backup_at, manifest.fingerprint.last_write_at),
                      schema_version=list(manifest.fingerprint.schema_version),
                      row_counts=dict(manifest.fingerprint.row_counts))
        progress(f"{stack}: backup {backup.name} ({manifest.bytes} bytes) in {backup_s:.2f} s; restoring")
        private_dir(scratch.parent)  # the restore's scratch is a full copy of the database
        # The restore reads the manifest back from disk, as an operator's restore would.
        outcome = restore_backup(backup, load_manifest(backup), scratch)
        result.update(restore_s=round(outcome.seconds, 3), rto_s=round(outcome.seconds, 3),
                      verified=_verified(manifest.fingerprint))
        # Read before --discard-backup removes it: what changed since the backup before, row by row.
        pruned_at = _last_prune_at(home, stack)
        changes, changed = _changes_since_previous(backup, manifest, progress, stack, pruned_at)
        result["changes_since_previous"] = changes
        if not keep_backup:
            backup.unlink(missing_ok=True)
            backup.with_name(backup.name.replace(".sqlite", ".manifest.json")).unlink(missing_ok=True)
        notes = _fewer_jobs_than_before(backup, manifest, progress, stack) + changed
        notes += _prune_old_backups(backup_dir, backup_retention_days, started, progress, pruned_at)
        notes += _prune_old_records(home, stack, "local", backup_retention_days, started)
        drill = DrillResult(passed=True, finished_at=iso(clock()), notes=notes, **result)
    except (GoldgateError, OSError) as exc:
        drill = DrillResult(passed=False, finished_at=iso(clock()), error=_reason(exc), **result)
    finally:
        for leftover in (scratch, scratch.with_name(scratch.name + ".restoring")):
            leftover.unlink(missing_ok=True)
    record(home, drill)
    return drill


def _fewer_jobs_than_before(backup: Path, manifest: BackupManifest, progress: Progress, stack: str) -> list[str]:
    """A note when the new backup holds fewer jobs than the backup before it: rows were lost or deleted since, which
    the drill's RPO cannot see. After a mistake, the backup to restore is the earlier one, not this."""
    jobs = manifest.fingerprint.row_counts.get("jobs")
    earlier = [path for path in backup_files(backup.parent) if path.name < backup.name]
    if jobs is None or not earlier:
        return []
    before = backup_jobs(earlier[-1])
    if before is None or before <= jobs:
        return []
    note = (f"this backup holds {jobs} jobs, the one before it ({earlier[-1].name}) {before}: jobs were deleted or "
            "lost since (a `goldgate prune`, or a mistake). To undo a mistake, restore the earlier backup, not this "
            f"one (`goldgate dr-restore {stack} --list`)")
    progress(note)
    return [note]


def _changes_since_previous(backup: Path, manifest: BackupManifest, progress: Progress, stack: str,
                            pruned_at: datetime | None = None) -> tuple[dict[str, Any] | None, list[str]]:
    """The rows of each table added, deleted and changed since the backup before this one, compared row by row by
    primary key and content, and a note when a job was deleted or a row changed with none of its `*_at` values moved.

    The RPO figure is the age of the newest `*_at` value the backup holds: a DELETE leaves no such value, and an
    UPDATE by hand moves none, so a backup of a damaged database reported a small RPO and the same row counts and
    last write as the good one before it. A table whose checksum equals the earlier manifest's is not read again.
    A prune (`pruned_at`, `goldgate prune` or the host's cron) since the backup before deletes finished jobs: those
    deletions are its, and only an unfinished job deleted (which no prune deletes) or a change by hand is named as a
    possible mistake, with the backup to restore."""
    earlier = [path for path in backup_files(backup.parent) if path.name < backup.name]
    if not earlier:
        return None, []
    previous = earlier[-1]
    try:
        previous_manifest = load_manifest(previous)
    except BackupRefused as exc:
        return None, [f"this backup was not compared with the one before it ({previous.name}): {exc}"]
    try:
        tables_changed = _compare_backups(previous, backup, previous_manifest.fingerprint.checksums,
                                          manifest.fingerprint.checksums)
        jobs = tables_changed.get("jobs", {})
        deleted, unstamped = jobs.get("deleted", 0), jobs.get("unstamped", 0)
        # A prune's record has whole seconds: one in the backup's own second counts as after it.
        pruned_since = bool(deleted) and pruned_at is not None \
            and pruned_at >= _aware(previous_manifest.created_at).replace(microsecond=0)
        unfinished = _deleted_unfinished_jobs(previous, backup) if pruned_since else deleted
    except (sqlite3.Error, OSError) as exc:
        why = f"this backup was not compared with the one before it ({previous.name}): it could not be read ({exc})"
        return None, [why]
    changes: dict[str, Any] = {"previous": previous.name, "tables": tables_changed}
    if pruned_since:
        changes.update(pruned_at=iso(pruned_at), jobs_deleted_unfinished=unfinished)
    if not (unfinished or unstamped):
        if not deleted:
            return changes, []
        note = (f"since the backup before this one ({previous.name}): {deleted} finished job(s) deleted, as the "
                f"prune at {iso(pruned_at)} does (it ran after that backup); no unfinished job was deleted and none "
                "was changed by hand")
        progress(note)
        return changes, [note]
    what = []
    if unfinished:
        what.append(f"{unfinished} unfinished job(s) deleted, which no prune deletes" if pruned_since else
                    f"{deleted} job(s) deleted (a `goldgate prune` deletes finished jobs too)")
    if unstamped:
        what.append(f"{unstamped} job(s) changed with none of their *_at values moved (the service moves "
                    "updated_at with every change it makes: an UPDATE by hand?)")
    note = (f"since the backup before this one ({previous.name}): {' and '.join(what)}, which the RPO figure cannot "
            "see. To undo a mistake, restore that backup or an earlier one, not this one "
            f"(`goldgate dr-restore {stack} --list`)")
    progress(note)
    return changes, [note]


def _aware(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _immutable(path: Path) -> str:
    """A backup file's URI for sqlite3, read as it is (no locks, no WAL: a backup is never written again)."""
    return "file:" + quote(str(path.resolve())) + "?immutable=1"


_TERMINAL_IN = ", ".join(f"'{status}'" for status in sorted(TERMINAL))


def _deleted_unfinished_jobs(earlier: Path, later: Path) -> int:
    """How many jobs `earlier` holds unfinished (queued or in progress) that `later` does not hold at all."""
    conn = sqlite3.connect(_immutable(later), uri=True)
    try:
        conn.execute("ATTACH DATABASE ? AS earlier", (_immutable(earlier),))
        return int(conn.execute(
            f"SELECT count(*) FROM earlier.jobs AS e WHERE e.status NOT IN ({_TERMINAL_IN}) "
            "AND NOT EXISTS (SELECT 1 FROM main.jobs AS l WHERE l.id = e.id)").fetchone()[0])
    finally:
        conn.close()


def _compare_backups(earlier: Path, later: Path, earlier_sums: dict[str, str],
                     later_sums: dict[str, str]) -> dict[str, dict[str, int]]:
    """{table: {added, deleted, changed, unstamped}} from `earlier` to `later`, for each table both hold with the
    same primary key; `unstamped` counts the changed rows none of whose `*_at` values moved. Only the columns both
    hold are compared (a migration between them adds columns, which are no change to a row)."""
    uri = _immutable

    def ident(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    out: dict[str, dict[str, int]] = {}
    conn = sqlite3.connect(uri(later), uri=True)
    try:
        conn.execute("ATTACH DATABASE ? AS earlier", (uri(earlier),))
        for table in sorted(set(earlier_sums) & set(later_sums)):
            if earlier_sums[table] == later_sums[table]:
                out[table] = {"added": 0, "deleted": 0, "changed": 0, "unstamped": 0}
                continue
            t = ident(table)
            new_info = conn.execute(f"PRAGMA main.table_info({t})").fetchall()
            old_info = conn.execute(f"PRAGMA earlier.table_info({t})").fetchall()
            pk = [row[1] for row in sorted((row for row in new_info if row[5]), key=lambda row: row[5])]
            old_pk = [row[1] for row in sorted((row for row in old_info if row[5]), key=lambda row: row[5])]
            if not pk or pk != old_pk:  # no key to match rows by: its checksum says it changed, no more
                continue
            old_columns = {row[1] for row in old_info}
            common = [row[1] for row in new_info if row[1] in old_columns and row[1] not in pk]
            same = " AND ".join(f"l.{ident(c)} = e.{ident(c)}" for c in pk)
            lacks = "SELECT count(*) FROM {0}.{1} AS l WHERE NOT EXISTS (SELECT 1 FROM {2}.{1} AS e WHERE {3})"
            added = conn.execute(lacks.format("main", t, "earlier", same)).fetchone()[0]
            deleted = conn.execute(lacks.format("earlier", t, "main", same)).fetchone()[0]
            differ = " OR ".join(f"l.{ident(c)} IS NOT e.{ident(c)}" for c in common) or "0"
            stamps = " AND ".join(f"l.{ident(c)} IS e.{ident(c)}" for c in common if c.endswith("_at")) or "1"
            changed, unstamped = conn.execute(
                f"SELECT count(*), total(CASE WHEN {stamps} THEN 1 ELSE 0 END) FROM main.{t} AS l "
                f"JOIN earlier.{t} AS e ON {same} WHERE {differ}").fetchone()
            out[table] = {"added": int(added), "deleted": int(deleted), "changed": int(changed),
                          "unstamped": int(unstamped)}
    finally:
        conn.close()
    return out


def _last_prune_at(home: Path, stack: str) -> datetime | None:
    """When the stack's database was last pruned (`goldgate prune`, or the host's cron), or None (never, or its
    record cannot be read: then a fuller backup is kept, the safe side)."""
    from goldgate.ops import retention

    try:
        record = retention.latest_prune(home, stack, "local")
        at = datetime.fromisoformat(str(record["finished_at"])) if record else None
    except (GoldgateError, OSError, KeyError, ValueError):
        return None
    return at if at is None or at.tzinfo is not None else at.replace(tzinfo=UTC)


def _prune_old_backups(backup_dir: Path, days: int, now: datetime, progress: Progress,
                       pruned_at: datetime | None = None) -> list[str]:
    """The prune after a passed drill; what it could not do is a note: the drill itself passed."""
    try:
        pruned = prune_backups(backup_dir, days, now, pruned_at)
    except OSError as exc:  # the directory unreadable: nothing deleted
        return [f"backups older than {days} days were not looked for in {backup_dir} ({exc.strerror or exc})"]
    notes = []
    if pruned.refused:  # what a clock far ahead would have deleted is kept
        notes.append(pruned.refused)
        progress(notes[-1])
    if pruned.kept_fuller:  # the last backup holding jobs the newest lacks is kept, whatever its age
        notes.append(pruned.kept_fuller)
        progress(notes[-1])
    if pruned.deleted:
        backups = sum(1 for name in pruned.deleted if name.endswith(".sqlite"))
        notes.append(f"deleted {backups} backup(s) older than {days} days (storage.backup_retention_days) from "
                     f"{backup_dir}: {len(pruned.deleted)} file(s); the newest, {pruned.kept_newest}, is always kept")
        progress(notes[-1])
    if pruned.failed:
        notes.append(f"backups older than {days} days could not be deleted: {'; '.join(pruned.failed[:5])}; "
                     "delete them by hand")
    return notes


_DATED_RECORD = re.compile(r"(\d{8}T\d{6}\.\d{3}Z)-(local|cloud)\.json")


def _prune_old_records(home: Path, stack: str, target: str, days: int, now: datetime) -> list[str]:
    """The dated copies of `target`'s drill records older than the backup window, but the newest (the checklist
    reads `latest-<target>.json`, which stays): one a day otherwise piled up for ever."""
    directory = drills_dir(home, stack)
    try:
        dated = sorted((match.group(1), path) for path in directory.glob(f"*-{target}.json")
                       if (match := _DATED_RECORD.fullmatch(path.name)) and match.group(2) == target)
    except OSError as exc:
        return [f"drill records older than {days} days were not looked for in {directory} ({exc.strerror or exc})"]
    cutoff = now - timedelta(days=days)
    times = [(when, path) for stamp, path in dated if (when := parse_stamp(stamp)) is not None]
    due = [path for when, path in times if when < cutoff and path != dated[-1][1]]
    jump = clock_jump([when for when, _ in times], now, timedelta(days=days + MAX_QUIET_DAYS)) if due else None
    notes = []
    if jump is not None:  # as prune_backups keeps what a clock far ahead would delete: every record but the newest
        due = [path for when, path in times if path in due and when >= jump[1]]
        notes.append(f"no dated drill record up to {iso(jump[0])} was deleted: it is the last for "
                     f"{(jump[1] - jump[0]).days} days, as a clock stepped ahead would make it. Set the clock right "
                     f"(`date -u`); if it was right all along, delete the records up to it in {directory} by hand")
    failed = []
    for path in due:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            failed.append(f"{path.name} ({exc.strerror or exc})")
    return notes + ([f"drill records older than {days} days could not be deleted: {'; '.join(failed[:5])}"]
                    if failed else [])


def _reason(exc: GoldgateError | OSError) -> str:
    """Why a drill failed. A file that could not be written (a full disk, a file where a directory belongs) fails
    the drill too: left unrecorded, the checklist would still show the drill before it as the latest, passed."""
    if isinstance(exc, GoldgateError):
        return str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}: free space, or fix that path under the state dir, and drill again"


def _verified(expected: Fingerprint) -> list[str]:
    latest = expected.schema_version[-1] if expected.schema_version else "(none)"
    return ([f"schema version {latest} ({len(expected.schema_version)} migrations)", "table definitions (sha256)"]
            + [f"{t}: {n} rows, checksum {expected.checksums[t][:12]}" for t, n in sorted(expected.row_counts.items())]
            + ["sha256 of the backup file", "SQLite integrity_check"])


@dataclass(frozen=True)
class RestoreReport:
    """What a restore did beside replacing the database, for the operator to act on."""
    target: Path
    kept: Path | None                      # the previous database, copied aside (None: there was none)
    journals_kept: list[Path] = field(default_factory=list)  # a deleted database's -wal/-shm, moved aside
    pending_migrations: list[str] = field(default_factory=list)  # what the next `goldgate up` applies to it
    lost_jobs: int | None = 0              # jobs of the replaced database the backup lacks (None: not compared)
    lost_job_ids: list[str] = field(default_factory=list)  # the first few of them, oldest first
    lost_reason: str | None = None         # why they were not compared
    stack: str = ""                        # the stack restored into
    backup_stack: str = ""                 # the stack the backup was taken from (its manifest's; --from-stack)

    @property
    def from_another_stack(self) -> bool:
        """A backup of another stack (`--from-stack`): the jobs it lacks are this stack's own, not jobs created
        after it, and are not to be merged into the other stack's data."""
        return bool(self.backup_stack) and self.backup_stack != self.stack

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "backup_stack": self.backup_stack, "target": str(self.target),
                "kept": None if self.kept is None else str(self.kept),
                "journals_kept": [str(path) for path in self.journals_kept],
                "pending_migrations": list(self.pending_migrations), "lost_jobs": self.lost_jobs,
                "lost_job_ids": list(self.lost_job_ids), "lost_reason": self.lost_reason,
                "from_another_stack": self.from_another_stack}


def restore_into_stack(backup: Path, target: Path, stack: str, from_stack: str | None = None) -> RestoreReport:
    """Restore a verified backup over stack `stack`'s stopped database; the old file is kept beside it.

    A backup another stack took (its manifest names the stack) is refused unless `from_stack` names
    that stack: restoring STAGING's jobs over PROD's is done on purpose or not at all.
    The backup is restored into a side file and verified first, then the old database is copied
    aside (with what its journal held), its journal files removed, then the copy takes its place: a failure
    at any step leaves the stack's database as it was, or its journal's writes in the copy kept aside. The journals
    of a database deleted by hand (its -wal may hold its last writes) are moved aside, never deleted.
    The report names the jobs of the replaced database the backup lacks, and the migrations `goldgate up` will apply.
    """
    manifest = load_manifest(backup)
    _refuse_a_d1_export(backup, manifest)
    _refuse_another_stacks_backup(backup, manifest, stack, from_stack)
    _refuse_unknown_migrations(backup, manifest)
    staged = target.with_name(f"{target.name}.restored")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)  # a stack never brought up on this machine
    except OSError as exc:
        raise RestoreFailed(f"cannot create {target.parent} ({exc.strerror or exc}); nothing was replaced") from None
    kept = None
    dropped = False
    moved: list[Path] = []
    try:
        try:
            restore_backup(backup, manifest, staged)
            if target.exists():
                kept = _keep_old_database(target)
                dropped = _drop_old_journals(target)
            else:  # deleted by hand: its journals are all that is left of it
                moved = _move_orphaned_journals(target)
            os.replace(staged, target)
        except BaseException:  # refused, failed or interrupted before the swap: nothing staged or kept stays behind
            if staged.exists() or kept is None:  # (once staged is gone the swap is done: kept is the old database)
                staged.unlink(missing_ok=True)
                if kept is not None and not dropped:  # else the copy is all that holds the old journal's writes
                    kept.unlink(missing_ok=True)
            raise
    except (OSError, sqlite3.Error) as exc:
        reason = (exc.strerror or exc) if isinstance(exc, OSError) else exc
        left = (f"it was left as it was, but for its journal, whose writes the copy {kept} holds" if dropped and kept
                else "it was left as it was")
        if moved:
            left += f"; its journal(s) were moved aside to {', '.join(str(path) for path in moved)}"
        raise RestoreFailed(f"replacing {target} failed ({reason}); {left}: free space or fix the permissions of "
                            f"{target.parent} and run the restore again") from None
    applied = set(manifest.fingerprint.schema_version)
    pending = [m.name for m in discover_migrations() if m.name not in applied]
    lost, lost_ids, why = _jobs_only_in(kept, target) if kept is not None else (0, [], None)
    return RestoreReport(target=target, kept=kept, journals_kept=moved, pending_migrations=pending,
                         lost_jobs=lost, lost_job_ids=lost_ids, lost_reason=why, stack=stack,
                         backup_stack=manifest.stack)


def _jobs_only_in(kept: Path, restored: Path, first: int = 5) -> tuple[int | None, list[str], str | None]:
    """How many jobs the previous database (its copy `kept`) holds that the restored one lacks, and the first
    `first` ids, oldest first: jobs created after the backup, which the restore drops (clients get 404)."""
    def uri(path: Path) -> str:
        return "file:" + quote(str(path.resolve())) + "?immutable=1"

    try:
        conn = sqlite3.connect(uri(kept), uri=True)
        try:
            conn.execute("ATTACH DATABASE ? AS restored", (uri(restored),))
            missing = "FROM main.jobs WHERE id NOT IN (SELECT id FROM restored.jobs)"
            count = conn.execute(f"SELECT count(*) {missing}").fetchone()[0]
            ids = [str(row[0]) for row in conn.execute(
                f"SELECT id {missing} ORDER BY created_at, id LIMIT ?", (first,))]
        finally:
            conn.close()
    except sqlite3.Error as exc:  # the previous database no longer readable (kept byte for byte), or has no jobs
        return None, [], f"{kept} could not be read to compare ({exc})"
    return int(count), ids, None


def _move_orphaned_journals(target: Path) -> list[Path]:
    """The -wal, -shm and -journal of a database file deleted by hand, moved to `<db>.before-restore-<stamp>-wal`
    (and so on): the WAL holds its last writes, which a restore must not delete with nothing kept."""
    stamp = utc_stamp()
    moved = []
    for suffix in ("-wal", "-journal", "-shm"):
        side = Path(str(target) + suffix)
        if side.exists():
            aside = target.with_name(f"{target.name}.before-restore-{stamp}{suffix}")
            os.replace(side, aside)
            moved.append(aside)
    return moved


def _drop_old_journals(target: Path) -> bool:
    """Remove the old database's -wal, -shm and -journal before the restored file takes its place (the stack is
    down: nothing has them open). Left until after the swap, a kill in between left the old WAL beside the
    restored database, and SQLite would have replayed the old database's pages into it on the next open. Reading
    the old database to keep a copy of it checkpoints its WAL in the usual case; what remains is in that copy."""
    dropped = False
    for suffix in ("-wal", "-shm", "-journal"):
        side = Path(str(target) + suffix)
        if side.exists():
            side.unlink()
            dropped = True
    return dropped


def list_backups(directory: Path) -> list[dict[str, Any]]:
    """The local backups in `directory`, newest first, each with what its manifest recorded: when it was taken, its
    jobs and the other tables' rows, the newest write it holds and its newest migration; `problem` when the manifest
    cannot vouch for it. To pick the newest backup taken BEFORE a mistake: its jobs and last write tell."""
    listed = []
    for path in reversed(backup_files(directory)):
        entry: dict[str, Any] = {"backup": str(path), "taken_at": None, "jobs": None, "rows": {},
                                 "last_write_at": None, "newest_migration": None, "problem": None}
        try:
            manifest = load_manifest(path)
        except BackupRefused as exc:
            entry["problem"] = str(exc)
        else:
            version = manifest.fingerprint.schema_version
            entry.update(taken_at=manifest.created_at, jobs=manifest.fingerprint.row_counts.get("jobs"),
                         rows=dict(manifest.fingerprint.row_counts),
                         last_write_at=manifest.fingerprint.last_write_at,
                         newest_migration=version[-1] if version else None)
        listed.append(entry)
    return listed


def _refuse_a_d1_export(backup: Path, manifest: BackupManifest) -> None:
    """A cloud drill's backup (SQL text) is not corrupt, only not a local one: say what it is and where it goes."""
    if manifest.kind == "sqlite":
        return
    what = ("a D1 export (SQL text, from `goldgate dr-drill --target cloud`)" if manifest.kind == "d1-sql"
            else f"of kind {show(manifest.kind)}")
    raise BackupRefused(f"backup {backup.name} is {what}, not a local SQLite backup; nothing was replaced. dr-restore "
                        "restores <home>/backups/<stack>/<stamp>.sqlite; a D1 export is imported into a D1 "
                        "(`wrangler d1 execute <database> --remote --file=<stamp>.sql`, docs/D1_DISASTER_RECOVERY.md)")


def _refuse_another_stacks_backup(backup: Path, manifest: BackupManifest, stack: str, from_stack: str | None) -> None:
    if manifest.stack == (stack if from_stack is None else from_stack):
        return
    # As an operator would type it; quoted and bounded when a hand-edited manifest holds no stack name.
    taken = manifest.stack if re.fullmatch(r"[a-z][a-z0-9-]{0,62}", manifest.stack) else show(manifest.stack)
    if from_stack is None:
        raise BackupRefused(f"backup {backup.name} was taken from stack {taken}, not {stack}: restoring it would "
                            f"replace {stack}'s jobs with {taken}'s; nothing was replaced. Pick a backup of {stack} "
                            f"(<home>/backups/{stack}/), or, to restore {taken}'s data into {stack} on purpose, "
                            f"add --from-stack {taken}")
    raise BackupRefused(f"backup {backup.name} was taken from stack {taken}, not {from_stack} (--from-stack); "
                        "nothing was replaced: check which backup you meant")


def _refuse_unknown_migrations(backup: Path, manifest: BackupManifest) -> None:
    """A backup from a newer checkout: the stack would refuse to start on it once restored."""
    known = {m.name for m in discover_migrations()}
    unknown = [name for name in manifest.fingerprint.schema_version if name not in known]
    if unknown:
        raise BackupRefused(f"backup {backup.name} holds migrations this checkout does not have "
                            f"({', '.join(unknown)}): the stack would not start on it; restore it from a checkout "
                            "that has them, or pick an older backup")


def _keep_old_database(target: Path) -> Path:
    """A copy of the stack's current database beside it, even when that database is no longer readable."""
    kept = target.with_name(f"{target.name}.before-restore-{utc_stamp()}")
    try:
        _copy_database(target, kept)
    except BaseException:  # a full disk, or interrupted: a half copy must not pass for the previous database
        for suffix in ("", "-wal", "-journal"):
            Path(str(kept) + suffix).unlink(missing_ok=True)
        raise
    return kept


def _copy_database(target: Path, kept: Path) -> None:
    # The SQLite backup API copies pages, so a copy of the old file is a consistent snapshot too.
    src = sqlite3.connect(target)
    dst = sqlite3.connect(kept)
    try:
        src.backup(dst)
    except sqlite3.DatabaseError as exc:
        if not unreadable_database(exc):
            raise
        # Not a database any more (often why it is being restored): keep its bytes as they are.
        dst.close()
        for suffix in ("", "-wal", "-journal"):
            old = Path(str(target) + suffix)
            if old.exists():
                shutil.copyfile(old, Path(str(kept) + suffix))
    finally:
        src.close()
        dst.close()


# -- cloud ---------------------------------------------------------------------------------------

def load_sql_dump(dump: Path, database: Path | str = ":memory:") -> sqlite3.Connection:
    """An export loaded into SQLite (a scratch file for a large dump, so neither Python nor SQLite holds it
    in memory), to fingerprint what the backup holds. The dump is read a line at a time, its rows run a few
    hundred to a statement (d1.run_dump)."""
    # No statement cache: each merged INSERT is new, and a cache would keep the last 128 (run_dump).
    conn = sqlite3.connect(database, isolation_level=None, cached_statements=0)
    denied: list[str] = []
    try:
        # A scratch copy, thrown away after fingerprinting: no journal file or fsync to pay for. The journal
        # in memory lets a failed run of rows be undone and run again one at a time, to name the row at fault.
        conn.execute("PRAGMA journal_mode = MEMORY")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        conn.set_authorizer(_export_statements_only(denied))
        run_dump(conn, file_lines(dump))
        conn.set_authorizer(None)
        conn.execute("COMMIT")
    except (UnicodeDecodeError, ValueError, sqlite3.Error) as exc:
        conn.close()
        if denied:
            raise BackupRefused(f"the D1 export holds {denied[0]}, which no D1 export does; refusing to run it") from None
        raise BackupRefused(f"the D1 export is not valid SQL ({exc}); refusing to use it") from None
    except OSError as exc:
        conn.close()
        raise BackupError(f"reading the D1 export {dump} failed ({exc.strerror or exc})") from None
    return conn


# What a D1 export may set besides its tables, indexes and rows (wrangler writes the first).
_EXPORT_PRAGMAS = ("defer_foreign_keys", "foreign_keys")


def _export_statements_only(denied: list[str]) -> Callable[..., int]:
    """An SQLite authorizer for running an export: the file comes back from R2, where anyone who can write the
    bucket could have changed it. ATTACH and VACUUM INTO (which SQLite authorizes as an ATTACH) would read or
    write any file this machine lets the drill's user reach, a PRAGMA could change how SQLite runs, and a COMMIT
    would end the load's transaction (VACUUM runs only outside one); each is refused, named in `denied`. Tables, indexes, views, triggers and rows are what an export holds."""

    def authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            denied.append(f"an ATTACH, DETACH or VACUUM INTO ({arg1!r})")
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_TRANSACTION:  # the load is one transaction of its own: a COMMIT would end it
            denied.append(f"a {arg1}")
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() not in _EXPORT_PRAGMAS:
            denied.append(f"PRAGMA {arg1}")
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    return authorize


def _fingerprint_dump(dump: Path, scratch: Path) -> Fingerprint:
    scratch.unlink(missing_ok=True)
    try:
        create_private(scratch)  # the whole database, as the export
        conn = load_sql_dump(dump, scratch)
        try:
            return fingerprint(SqliteSource(conn))
        finally:
            conn.close()
    finally:
        scratch.unlink(missing_ok=True)


def run_cloud_drill(stack: str, d1: D1Client, database_id: str, r2: R2Admin, home: Path,
                    progress: Progress = _quiet, scratch_prefix: str = "goldgate-drill",
                    backup_retention_days: int = DEFAULT_BACKUP_RETENTION_DAYS) -> DrillResult:
    """Export D1, keep the export in R2, import it into a scratch D1, verify, delete the scratch, record.

    The dump (up to 10 GB) only ever moves between files, R2 and D1 a chunk at a time: memory stays
    bounded whatever the database's size. The backups in R2 expire by the bucket's lifecycle rule (Pulumi's,
    from storage.backup_retention_days); a passed drill deletes the dated drill records older than that here."""
    started = datetime.now(UTC)
    stamp = utc_stamp(started)
    result: dict[str, Any] = {"stack": stack, "target": "cloud", "started_at": iso(started), "database_id": database_id}
    scratch_id: str | None = None
    notes: list[str] = []
    work = drills_dir(home, stack)
    export_file = work / f"export-{stamp}.sql"
    loaded_file = work / f"export-{stamp}.sqlite"     # the export loaded into SQLite, to fingerprint it
    restore_file = work / f"restore-{stamp}.sql"      # the backup as read back from R2
    try:
        source_schema = D1Source(d1, database_id)
        progress(f"{stack}: exporting D1 {database_id}")
        t0 = time.perf_counter()
        private_dir(work)  # the export, and its SQLite copy, hold the whole database
        export = d1.export_sql(database_id, export_file, progress)
        backup_at = datetime.now(UTC)
        expected = _fingerprint_dump(export.path, loaded_file)
        if not expected.row_counts:
            raise BackupRefused(f"the export of D1 {database_id} holds no tables: it is not {stack}'s migrated "
                                "database (check --database-id); nothing was stored in R2")
        _refuse_partial_export(source_schema, expected, database_id)
        _refuse_another_stacks_database(source_schema, expected, database_id, stack)
        name = f"{stack}/{stamp}.sql"
        # The sha256 taken while downloading goes in the object's metadata and in the manifest; the copy
        # read back from R2 must match it.
        stored = r2.put_backup_file(name, export.path, export.sha256)
        manifest = BackupManifest(stack=stack, kind="d1-sql", file=stored.key.rsplit("/", 1)[-1],
                                  bytes=export.bytes, sha256=export.sha256, created_at=iso(backup_at),
                                  source=f"d1:{database_id}@{export.at_bookmark}", fingerprint=expected)
        r2.put_backup(f"{stack}/{stamp}.manifest.json", json.dumps(manifest.to_dict(), indent=2).encode(),
                      content_type="application/json")
        backup_s = time.perf_counter() - t0
        result.update(backup=f"r2://{r2.bucket}/{stored.key}", backup_bytes=export.bytes,
                      backup_s=round(backup_s, 3), last_write_at=expected.last_write_at,
                      rpo_s=_rpo(backup_at, expected.last_write_at), schema_version=list(expected.schema_version),
                      row_counts=dict(expected.row_counts))
        live_version = _schema_version(source_schema)
        if live_version != expected.schema_version:
            raise BackupRefused(f"the export's schema version {list(expected.schema_version)} differs from the live "
                                f"database's {list(live_version)}: a migration ran during the export; run the drill "
                                "again")
        export_file.unlink(missing_ok=True)  # the import below reads the backup back from R2
        progress(f"{stack}: stored {stored.key} ({export.bytes} bytes); importing into a scratch D1")
        t1 = time.perf_counter()
        fetched = r2.fetch(stored.key, restore_file)  # restore from what R2 holds, not from the local export
        if fetched.sha256 != manifest.sha256 or fetched.recorded_sha256 != manifest.sha256:
            raise BackupRefused(f"the backup read back from R2 ({stored.key}) does not match its sha256")
        scratch_id = d1.create_database(_scratch_name(scratch_prefix, started)).uuid
        d1.import_sql(scratch_id, fetched.path, progress)
        restore_file.unlink(missing_ok=True)
        got = fingerprint(D1Source(d1, scratch_id))
        problems = got.differences(expected)
        if problems:
            raise BackupRefused("the scratch D1 restored from the export differs from the export: "
                                + "; ".join(problems[:5]))
        restore_s = time.perf_counter() - t1
        result.update(restore_s=round(restore_s, 3), rto_s=round(restore_s, 3),
                      verified=_verified(expected)[:-1] + ["sha256 of the export as stored in R2"])
        notes += _prune_old_records(home, stack, "cloud", backup_retention_days, started)
        drill = DrillResult(passed=True, finished_at=iso(datetime.now(UTC)), notes=notes, **result)
    except (GoldgateError, OSError) as exc:
        drill = DrillResult(passed=False, finished_at=iso(datetime.now(UTC)), error=_reason(exc), notes=notes,
                            **result)
    finally:
        # The backup lives in R2; local copies per drill would fill the disk.
        for leftover in (export_file, loaded_file, restore_file):
            leftover.unlink(missing_ok=True)
        if scratch_id:
            try:
                d1.delete_database(scratch_id)
            except GoldgateError as exc:
                notes.append(f"scratch database {scratch_id} was not deleted ({exc}); delete it by hand")
    record(home, drill)
    return drill


def _scratch_name(prefix: str, started: datetime) -> str:
    """A scratch D1 name no other drill takes: two drills started in the same second (the scheduled one and an
    operator's) shared a name to the second, and the later failed at creating it after its export had run. The
    time says when a leftover was made; the random hex keeps drills of the same second apart."""
    suffix = f"-{started:%m%d-%H%M%S}-{secrets.token_hex(2)}"
    return prefix[:MAX_SCRATCH_NAME - len(suffix)] + suffix


def _refuse_partial_export(live: D1Source, expected: Fingerprint, database_id: str) -> None:
    """The export against the live database's schema: an export that left out a table (or an index or a
    trigger) restores and verifies against itself perfectly, yet is not a backup of the database."""
    live_tables = tables(live)
    missing = sorted(set(live_tables) - set(expected.row_counts))
    if missing:
        raise BackupRefused(f"the export of D1 {database_id} lacks table(s) {', '.join(missing)} of the live "
                            "database: a partial export; nothing was stored in R2. Run the drill again")
    if schema_sha256(live) != expected.schema_sha256:
        raise BackupRefused(f"the export of D1 {database_id} does not hold the live database's table/index/trigger "
                            "definitions (a partial export, or a migration ran during the export); nothing was "
                            "stored in R2. Run the drill again")


def _refuse_another_stacks_database(live: D1Source, expected: Fingerprint, database_id: str, stack: str) -> None:
    """`--database-id` is typed by hand: each job row names the stack that created it (the service's STACK),
    so a database whose newest job is another stack's is not this stack's, and its export is no backup of it."""
    if not expected.row_counts.get("jobs"):
        return
    newest = live.rows("SELECT stack FROM jobs ORDER BY created_at DESC LIMIT 1")  # by the created_at index
    owner = newest[0].get("stack") if newest else None
    if owner is not None and owner != stack:
        raise BackupRefused(f"D1 {database_id} holds the jobs of stack {show(owner)}, not of {stack}: check --database-id "
                            f"(the D1 uuid of {stack}'s database); nothing was stored in R2")


def _schema_version(source: D1Source) -> tuple[str, ...]:
    return schema_version(source, tables(source))
