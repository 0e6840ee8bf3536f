"""What a drill and `dr-restore` tell the operator after damage, checked where session 27's tests left gaps (session
28 mutation audit of goldgate/ops/dr.py): the "fewer jobs" note compares with the backup just before and says
nothing when no job went; a deleted database's rollback journal and -shm are moved aside too (a hot journal left
beside the restored file is rolled back into it); the jobs a restore drops are named oldest first, with "..." past
the first five; a prune record with a naive time still lets the drill prune; `--list` of a stack that never took
a backup lists none."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ops_fixtures import run_sql
from test_review27_fixdr_restore import _count, _new_job, _old_good_backup, _restore

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.migrations import discover
from goldgate.ops import retention
from goldgate.ops.backup import manifest_path, take_backup
from goldgate.ops.dr import run_local_drill


def _fewer_notes(notes: list[str]) -> list[str]:
    return [note for note in notes if "jobs were deleted or lost since" in note]


def test_a_drill_with_no_job_gone_since_the_last_backup_says_nothing_of_lost_jobs(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=12)
    for _ in range(2):
        result = run_local_drill("staging", db, home, backup_retention_days=90)
        assert result.passed, result.error
        assert _fewer_notes(result.notes) == [], result.notes


def test_the_fewer_jobs_note_compares_with_the_backup_just_before_not_the_oldest(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=40)
    _old_good_backup(home, db, days=20)                       # 40 jobs, long ago
    run_sql(db, "DELETE FROM job_metrics", "DELETE FROM webhook_deliveries",
         "DELETE FROM jobs WHERE id NOT IN (SELECT id FROM jobs ORDER BY created_at DESC LIMIT 10)")
    _old_good_backup(home, db, days=1)                        # 10 jobs: the prune went before this one
    result = run_local_drill("staging", db, home, backup_retention_days=90)
    assert result.passed, result.error
    assert _fewer_notes(result.notes) == [], result.notes      # 10 then, 10 now
    previous = Path(result.backup)
    run_sql(db, "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs ORDER BY created_at LIMIT 4)")
    result = run_local_drill("staging", db, home, backup_retention_days=90)
    [note] = _fewer_notes(result.notes)
    assert f"holds 6 jobs, the one before it ({previous.name}) 10:" in note, note


def test_a_deleted_databases_rollback_journal_and_shm_are_moved_aside_not_left_beside_the_restore(
        tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    backup, _ = take_backup(db, home / "backups" / "staging", "staging")
    journal, shm = Path(f"{db}-journal"), Path(f"{db}-shm")
    journal.write_bytes(b"the deleted database's rollback journal")
    shm.write_bytes(b"shm")
    db.unlink()
    out = _restore(home, backup, capsys)
    assert not journal.exists() and not shm.exists()
    moved = {path.name.rsplit("-", 1)[1]: path for path in db.parent.glob("db.sqlite.before-restore-*")}
    assert set(moved) == {"journal", "shm"}, moved
    assert moved["journal"].read_bytes() == b"the deleted database's rollback journal"
    assert str(moved["journal"]) in out and str(moved["shm"]) in out, out
    assert _count(db) == 5


def test_the_jobs_a_restore_drops_are_named_oldest_first_and_the_rest_counted(tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=3)
    backup, _ = take_backup(db, home / "backups" / "staging", "staging")
    new = [f"{n:02d}" * 16 for n in range(7)]
    for n, job_id in enumerate(new):
        _new_job(db, job_id)
        run_sql(db, f"UPDATE jobs SET created_at = '2027-01-0{n + 1}T00:00:00Z' WHERE id = '{job_id}'")
    out = _restore(home, backup, capsys)
    [warning] = [line for line in out.splitlines() if "WARNING" in line]
    assert "7 job(s)" in warning
    assert f"{', '.join(new[:5])}, ..." in warning, warning
    assert new[5] not in warning and new[6] not in warning


def test_a_prune_record_with_a_time_without_zone_still_lets_the_drill_prune(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=40)
    old = _old_good_backup(home, db)
    run_sql(db, "DELETE FROM job_metrics", "DELETE FROM webhook_deliveries", "DELETE FROM jobs")
    path = retention.record_path(home, "staging", "local")
    path.parent.mkdir(parents=True)
    naive = (datetime.now(UTC) - timedelta(days=10)).replace(tzinfo=None).isoformat()  # UTC, written without zone
    path.write_text(json.dumps({"format": retention.PRUNE_FORMAT, "target": "local", "dry_run": False,
                                "finished_at": naive}))
    result = run_local_drill("staging", db, home, backup_retention_days=90)
    assert result.passed, result.error
    assert not old.exists(), result.notes


def test_listing_the_backups_of_a_stack_that_never_took_one_lists_none(tmp_path, capsys):
    home = tmp_path / "home"
    assert main(["dr-restore", "staging", "--home", str(home), "--list"]) == 0
    out = capsys.readouterr().out
    assert "staging: 0 backup(s)" in out, out


def test_a_replaced_database_that_cannot_be_read_is_said_not_compared_not_taken_as_losing_nothing(
        tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    backup, _ = take_backup(db, home / "backups" / "staging", "staging")
    db.write_bytes(b"not a database: what a broken disk left" * 100)
    out = _restore(home, backup, capsys)
    assert "the jobs of the replaced database were not compared with the backup's" in out, out
    assert "WARNING" not in out and _count(db) == 5


def test_the_list_names_each_backups_newest_migration(tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=3)
    take_backup(db, home / "backups" / "staging", "staging")
    assert main(["dr-restore", "staging", "--home", str(home), "--list"]) == 0
    out = capsys.readouterr().out
    assert f"migration {discover()[-1].name} (" in out, out


def test_a_backup_whose_manifest_is_gone_is_listed_as_one_that_cannot_be_restored(tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=3)
    backup, _ = take_backup(db, home / "backups" / "staging", "staging")
    manifest_path(backup).unlink()
    assert main(["dr-restore", "staging", "--home", str(home), "--list"]) == 0
    out = capsys.readouterr().out
    assert "staging: 1 backup(s)" in out and f"  {backup}: cannot be restored: " in out, out


def test_a_restore_says_where_the_old_database_is_kept_and_a_current_backup_needs_no_migration(
        tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=3)
    backup, _ = take_backup(db, home / "backups" / "staging", "staging")
    out = _restore(home, backup, capsys)
    assert "restored" in out and "migration" not in out, out
    [kept] = db.parent.glob("db.sqlite.before-restore-*")
    assert f"staging: the previous database is kept at {kept}" in out, out


def _prune_record(home: Path, text: str) -> None:
    path = retention.record_path(home, "staging", "local")
    path.parent.mkdir(parents=True)
    path.write_text(text)


def test_a_prune_record_that_cannot_be_read_neither_fails_the_drill_nor_lets_the_fuller_backup_go(
        tmp_path, stack_db):
    for n, text in enumerate(["{not json", json.dumps({"format": "goldgate.prune.v0"}),
                              json.dumps({"format": retention.PRUNE_FORMAT, "target": "local", "dry_run": False})]):
        home = tmp_path / f"home{n}"
        db = stack_db(LocalPlatform(home).db_path("staging"), jobs=40)
        good = _old_good_backup(home, db)
        run_sql(db, "DELETE FROM job_metrics", "DELETE FROM webhook_deliveries", "DELETE FROM jobs")
        _prune_record(home, text)  # damaged, another format's, and one without its finish time
        result = run_local_drill("staging", db, home, backup_retention_days=90)
        assert result.passed, (text, result.error)
        assert good.exists(), (text, result.notes)   # the safe side: kept, and said
        assert any(good.name in note and "was kept" in note for note in result.notes), result.notes
