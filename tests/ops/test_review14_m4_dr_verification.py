"""Review 14 (m4): what a DR drill's restore verifies, each check held by a test that fails without it."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from goldgate.errors import StateError
from goldgate.ops.backup import (
    BackupRefused,
    file_sha256,
    load_manifest,
    manifest_path,
    restore_backup,
    take_backup,
)
from goldgate.ops.dr import latest_drill, run_local_drill


def _database_with_a_corrupt_index(path: Path) -> Path:
    """A database whose rows read back intact but whose index no longer matches them (what a bad disk page of an
    index looks like to SQLite): every row and the schema fingerprint alike in the source and its backup."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, stack TEXT, created_at TEXT)")
    conn.execute("CREATE INDEX jobs_stack ON jobs (stack)")
    conn.executemany("INSERT INTO jobs (stack, created_at) VALUES (?, ?)",
                     [(f"s{i}", f"2026-11-29T10:{i:02d}:00Z") for i in range(40)])
    conn.commit()
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = 'CREATE INDEX jobs_stack ON jobs (created_at)' "
                 "WHERE name = 'jobs_stack'")
    conn.commit()
    conn.close()
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] != "ok"  # the premise
    finally:
        check.close()
    return path


def test_a_drill_whose_restored_copy_fails_sqlites_integrity_check_fails(tmp_path: Path) -> None:
    # The table checksums read the rows, not the index: only SQLite's integrity check sees that the restored copy
    # would answer the service's indexed queries wrongly. The drill must fail, not record a restore as verified.
    source = _database_with_a_corrupt_index(tmp_path / "db.sqlite")
    drill = run_local_drill("staging", source, tmp_path / "home")
    assert drill.passed is False
    assert "integrity check" in (drill.error or ""), drill.error
    assert latest_drill(tmp_path / "home", "staging", "local")["passed"] is False


def _small_database(path: Path) -> Path:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, stack TEXT, created_at TEXT)")
        conn.execute("CREATE INDEX jobs_created_at ON jobs (created_at)")
        conn.executemany("INSERT INTO jobs (stack, created_at) VALUES (?, ?)",
                         [("staging", f"2026-11-29T10:{i:02d}:00Z") for i in range(20)])
    conn.close()
    return path


def test_a_backup_that_lost_an_index_is_refused_though_every_row_and_its_hash_match(tmp_path: Path) -> None:
    # The backup file edited (an index dropped) and its manifest's size and hash rewritten to match: the rows are
    # all there, but the restored database would not be the one backed up (the service's queries lean on the index).
    backup, _ = take_backup(_small_database(tmp_path / "db.sqlite"), tmp_path / "backups", "staging")
    conn = sqlite3.connect(backup)
    conn.execute("DROP INDEX jobs_created_at")
    conn.commit()
    conn.close()
    raw = json.loads(manifest_path(backup).read_text())
    raw.update(bytes=backup.stat().st_size, sha256=file_sha256(backup))
    manifest_path(backup).write_text(json.dumps(raw))
    with pytest.raises(BackupRefused, match="table/index definitions differ"):
        restore_backup(backup, load_manifest(backup), tmp_path / "restored.sqlite")
    assert not (tmp_path / "restored.sqlite").exists()


def test_a_last_write_stored_as_epoch_milliseconds_gives_the_drills_rpo(tmp_path: Path) -> None:
    # RPO achieved = backup time minus the newest `*_at` the backup holds; a time kept as epoch milliseconds is
    # that instant, not a year past 9999 that reads as "no write" (and no RPO).
    written = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    with conn:
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, updated_at INTEGER)")
        conn.execute("INSERT INTO events (updated_at) VALUES (?)", (int(written.timestamp() * 1000),))
    conn.close()
    drill = run_local_drill("staging", tmp_path / "db.sqlite", tmp_path / "home")
    assert drill.passed, drill.error
    assert drill.last_write_at == "2026-11-29T10:00:00.000Z"
    assert drill.rpo_s is not None and drill.rpo_s > 0


def _dated_record(home: Path, when: datetime, target: str = "local") -> Path:
    path = home / "drills" / "staging" / f"{when:%Y%m%dT%H%M%S}.000Z-{target}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    return path


def test_a_passed_drill_prunes_dated_records_past_the_window_but_never_the_newest(tmp_path: Path) -> None:
    # docs/D1_DISASTER_RECOVERY.md: a passed drill deletes its dated records older than the window, never the
    # newest: drills that stopped for longer than the window keep the record of the last one before this.
    home = tmp_path / "home"
    now = datetime.now(UTC)
    oldest = _dated_record(home, now - timedelta(days=50))
    newest_before = _dated_record(home, now - timedelta(days=40))
    cloud = _dated_record(home, now - timedelta(days=50), target="cloud")  # the other target's: not this drill's
    drill = run_local_drill("staging", _small_database(tmp_path / "db.sqlite"), home, backup_retention_days=30)
    assert drill.passed, drill.error
    assert not oldest.exists()
    assert newest_before.exists() and cloud.exists()


def test_a_latest_record_of_the_other_target_is_refused_not_taken_as_evidence(tmp_path: Path) -> None:
    # A local drill's record copied over latest-cloud.json must not count as a drill of D1.
    home = tmp_path / "home"
    drill = run_local_drill("staging", _small_database(tmp_path / "db.sqlite"), home)
    (home / "drills" / "staging" / "latest-cloud.json").write_text(json.dumps(drill.to_dict()))
    with pytest.raises(StateError, match="records a drill on the 'local' target, not cloud"):
        latest_drill(home, "staging", "cloud")


def _backup_files(directory: Path, when: datetime) -> str:
    stamp = when.strftime("%Y%m%dT%H%M%S.%fZ")
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in ("sqlite", "manifest.json"):
        (directory / f"{stamp}.{suffix}").write_text("x")
    return stamp


def test_backups_go_once_older_than_the_window_and_the_newest_restorable_one_never(tmp_path: Path) -> None:
    from goldgate.ops.backup import prune_backups

    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    directory = tmp_path / "backups"
    past = _backup_files(directory, now - timedelta(days=30, hours=6))    # hours past the 30-day window
    inside = _backup_files(directory, now - timedelta(days=29, hours=18))
    pruned = prune_backups(directory, 30, now)
    assert sorted(pruned.deleted) == [f"{past}.manifest.json", f"{past}.sqlite"]
    assert (directory / f"{inside}.sqlite").exists() and pruned.kept_newest == f"{inside}.sqlite"
    # The newest backup with its manifest stays whatever its age; a newer one without its manifest is no backup
    # to keep in its place.
    (directory / f"{inside}.sqlite").unlink()
    (directory / f"{inside}.manifest.json").unlink()
    old = _backup_files(directory, now - timedelta(days=90))
    (directory / f"{_backup_files(directory, now - timedelta(days=60))}.manifest.json").unlink()
    pruned = prune_backups(directory, 30, now)
    assert pruned.kept_newest == f"{old}.sqlite" and (directory / f"{old}.sqlite").exists()
