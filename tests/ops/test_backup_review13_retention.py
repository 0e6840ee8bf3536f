"""Local D1 backups are kept storage.backup_retention_days, as R2's lifecycle rule keeps the cloud's: a passed drill
deletes the older ones (each backup with its manifest), never the newest, and a failed drill deletes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from goldgate.local.platform import LocalPlatform
from goldgate.ops.backup import load_manifest, prune_backups, restore_backup, take_backup
from goldgate.ops.dr import latest_drill, run_local_drill
from goldgate.spec import DEFAULT_BACKUP_RETENTION_DAYS, load_local

NOW = datetime.now(UTC)


def _backup_at(db: Path, home: Path, days_ago: float) -> Path:
    when = NOW - timedelta(days=days_ago)
    backup, _ = take_backup(db, home / "backups" / "staging", "staging", clock=lambda: when)
    return backup


def _names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def _pair(backup: Path) -> set[str]:
    return {backup.name, backup.name.replace(".sqlite", ".manifest.json")}


def test_a_passed_drill_deletes_the_backups_older_than_the_window_and_keeps_the_rest(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=20)
    old, older = _backup_at(db, home, 45), _backup_at(db, home, 31)
    recent = _backup_at(db, home, 29)
    backups = home / "backups" / "staging"
    (backups / "before-upgrade.sqlite").write_bytes(b"an operator's own copy")

    result = run_local_drill("staging", db, home, backup_retention_days=30)

    assert result.passed, result.error
    left = _names(backups)
    assert not (_pair(old) | _pair(older)) & left
    new = Path(result.backup)
    assert _pair(recent) | _pair(new) | {"before-upgrade.sqlite"} == left
    assert any("deleted 2 backup(s) older than 30 days" in note and new.name in note for note in result.notes)
    assert latest_drill(home, "staging", "local")["notes"] == result.notes
    # what is left still restores
    restore_backup(recent, load_manifest(recent), tmp_path / "restored.sqlite")


def test_the_newest_backup_is_kept_whatever_its_age(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    oldest, newest = _backup_at(db, home, 400), _backup_at(db, home, 200)
    # The drill's own backup discarded (--discard-backup): the newest left is 200 days old, and stays.
    result = run_local_drill("staging", db, home, keep_backup=False, backup_retention_days=30)
    assert result.passed, result.error
    assert _names(home / "backups" / "staging") == _pair(newest)
    # Nor does any clock, however far ahead, take the last one.
    pruned = prune_backups(home / "backups" / "staging", 7, NOW + timedelta(days=3650))
    assert pruned.deleted == [] and pruned.kept_newest == newest.name
    assert _names(home / "backups" / "staging") == _pair(newest)
    assert not oldest.exists()


def test_a_backup_without_its_manifest_is_not_the_one_kept(tmp_path, stack_db):
    # A backup killed before its manifest was written cannot be restored (dr-restore refuses it): the newest
    # backup that can be is the one kept.
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    restorable, unverifiable = _backup_at(db, home, 100), _backup_at(db, home, 90)
    unverifiable.with_name(unverifiable.name.replace(".sqlite", ".manifest.json")).unlink()
    pruned = prune_backups(home / "backups" / "staging", 30, NOW)
    assert pruned.kept_newest == restorable.name and pruned.deleted == [unverifiable.name]
    assert _names(home / "backups" / "staging") == _pair(restorable)


def test_a_failed_drill_deletes_no_backup(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(tmp_path / "elsewhere.sqlite", jobs=5)
    old, older = _backup_at(db, home, 200), _backup_at(db, home, 100)
    result = run_local_drill("staging", tmp_path / "missing.sqlite", home, backup_retention_days=30)
    assert not result.passed
    assert _names(home / "backups" / "staging") == _pair(old) | _pair(older)


def test_old_dated_drill_records_go_with_the_window_and_the_latest_stays(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    drills = home / "drills" / "staging"
    drills.mkdir(parents=True)
    stale = drills / f"{(NOW - timedelta(days=60)):%Y%m%dT%H%M%S}.000Z-local.json"
    fresh = drills / f"{(NOW - timedelta(days=2)):%Y%m%dT%H%M%S}.000Z-local.json"
    cloud = drills / f"{(NOW - timedelta(days=60)):%Y%m%dT%H%M%S}.000Z-cloud.json"  # the only cloud one
    for path in (stale, fresh, cloud):
        path.write_text("{}")
    assert run_local_drill("staging", db, home, backup_retention_days=30).passed
    assert not stale.exists() and fresh.exists() and cloud.exists()
    assert (drills / "latest-local.json").exists()


def test_the_window_defaults_to_the_stacks_setting_default():
    # The shipped local stacks set none: 90 days, past D1 Time Travel's 30.
    assert DEFAULT_BACKUP_RETENTION_DAYS == 90
    assert load_local("staging").storage.backup_retention_days == DEFAULT_BACKUP_RETENTION_DAYS


def test_a_backup_that_cannot_be_deleted_is_a_note_and_keeps_its_manifest(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    stuck = _backup_at(db, home, 100)
    stuck.unlink()
    stuck.mkdir()  # a directory where the backup was: it cannot be unlinked
    manifest = stuck.with_name(stuck.name.replace(".sqlite", ".manifest.json"))
    result = run_local_drill("staging", db, home, backup_retention_days=30)
    assert result.passed, result.error
    assert any(note.startswith("backups older than 30 days could not be deleted") and stuck.name in note
               for note in result.notes)
    assert stuck.is_dir() and manifest.is_file()
