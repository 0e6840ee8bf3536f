"""The local restore journey of docs/D1_DISASTER_RECOVERY.md followed on a damaged stack (session 27 review): a drill
after a mistake must not prune the last backup that held the lost rows, the backups can be listed with what each
holds, `dr-restore` says which jobs it drops and which migrations `up` will apply, the doc's merge recipe brings the
dropped jobs back, and a deleted database's orphaned WAL is kept aside, not deleted."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ops_fixtures import run_sql

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.ops.backup import take_backup
from goldgate.ops.dr import run_local_drill

DOC = Path(__file__).resolve().parents[2] / "docs" / "D1_DISASTER_RECOVERY.md"


def _count(db: Path, sql: str = "SELECT count(*) FROM jobs") -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def _old_good_backup(home: Path, db: Path, days: int = 122) -> Path:
    then = datetime.now(UTC) - timedelta(days=days)
    backup, _ = take_backup(db, home / "backups" / "staging", "staging", clock=lambda: then)
    return backup


def test_a_drill_after_rows_were_deleted_keeps_the_last_backup_that_held_them(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=40)
    good = _old_good_backup(home, db)
    run_sql(db, "DELETE FROM job_metrics", "DELETE FROM webhook_deliveries", "DELETE FROM jobs")  # the mistake
    for day in range(2):  # the drill of the damaged database, and the next day's
        result = run_local_drill("staging", db, home, backup_retention_days=90)
        assert result.passed, result.error
        assert good.exists() and good.with_name(good.name.replace(".sqlite", ".manifest.json")).exists()
        assert any(good.name in note and "40 jobs" in note for note in result.notes), result.notes
        if day == 0:  # the drill of the damaged database says the backup before it held more
            assert any("holds 0 jobs" in note and good.name in note and "restore the earlier backup" in note
                       for note in result.notes), result.notes
    assert _count(good) == 40


def test_jobs_a_prune_deleted_since_an_old_backup_do_not_keep_it(tmp_path, stack_db):
    # The stack prunes on a schedule: every drill kept one backup past its retention and said jobs were lost.
    import json

    from goldgate.ops import retention

    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=40)
    old = _old_good_backup(home, db)
    run_sql(db, "DELETE FROM job_metrics", "DELETE FROM webhook_deliveries", "DELETE FROM jobs")  # the prune's work
    path = retention.record_path(home, "staging", "local")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format": retention.PRUNE_FORMAT, "target": "local", "dry_run": False,
                                "finished_at": (datetime.now(UTC) - timedelta(days=10)).isoformat()}))
    result = run_local_drill("staging", db, home, backup_retention_days=90)
    assert result.passed, result.error
    assert not old.exists(), result.notes
    assert not any("was kept" in note for note in result.notes), result.notes


def test_an_old_backup_holding_no_more_jobs_than_the_newest_still_expires(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=40)
    old = _old_good_backup(home, db)
    result = run_local_drill("staging", db, home, backup_retention_days=90)
    assert result.passed, result.error
    assert not old.exists(), result.notes


def test_the_backups_are_listed_newest_first_with_the_jobs_each_holds(tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=40)
    good = _old_good_backup(home, db, days=2)
    run_sql(db, "DELETE FROM job_metrics", "DELETE FROM webhook_deliveries", "DELETE FROM jobs")
    damaged = Path(run_local_drill("staging", db, home).backup)
    assert main(["dr-restore", "staging", "--home", str(home), "--list"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip().startswith(str(home))]
    assert [line.split(":", 1)[0].strip() for line in lines] == [str(damaged), str(good)]
    assert "jobs=0" in lines[0] and "jobs=40" in lines[1], out
    assert "last write" in lines[1]


def _restore(home: Path, backup: Path, capsys) -> str:
    assert main(["dr-restore", "staging", "--home", str(home), "--backup", str(backup)]) == 0
    return capsys.readouterr().out


def test_the_restore_names_the_migrations_the_next_up_applies_to_the_backup(tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    older = stack_db(tmp_path / "older" / "db.sqlite", jobs=5)
    run_sql(older, "DELETE FROM d1_migrations WHERE name = '0008_delivery_source_cancel.sql'")  # taken before 0008
    backup, _ = take_backup(older, home / "backups" / "staging", "staging")
    stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    out = _restore(home, backup, capsys)
    assert "0008_delivery_source_cancel.sql" in out and "goldgate up staging" in out, out


def _new_job(db: Path, job_id: str) -> None:
    """A job created (and completed) after the backup: a copy of the newest row under a new id."""
    run_sql(db, "CREATE TEMP TABLE one AS SELECT * FROM jobs ORDER BY created_at DESC LIMIT 1",
         f"UPDATE one SET id = '{job_id}', created_at = '2027-01-01T00:00:00Z', status = 'completed'",
         "INSERT INTO jobs SELECT * FROM one",
         "CREATE TEMP TABLE metric AS SELECT * FROM job_metrics ORDER BY created_at DESC LIMIT 1",
         f"UPDATE metric SET job_id = '{job_id}'", "INSERT INTO job_metrics SELECT * FROM metric")


def _merge_recipe(db: Path, kept: Path) -> str:
    """The SQL of the doc's "Jobs the backup lacks" block, as written, for this stack's files."""
    section = DOC.read_text(encoding="utf-8").split("#### Jobs the backup lacks", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    command, sql = block.split("\n", 1)
    assert command == "sqlite3 <home>/stacks/staging/db.sqlite <<'SQL'", command
    sql = sql.rsplit("SQL\n", 1)[0]
    assert "<home>/stacks/staging/db.sqlite.before-restore-<stamp>" in sql
    return sql.replace("<home>/stacks/staging/db.sqlite.before-restore-<stamp>", str(kept))


def test_jobs_created_after_the_backup_are_named_and_the_doc_merges_them_back(tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=10)
    backup, _ = take_backup(db, home / "backups" / "staging", "staging")
    new = ["aa" * 16, "bb" * 16]
    for job_id in new:
        _new_job(db, job_id)
    run_sql(db, "DELETE FROM job_metrics WHERE job_id IN (SELECT id FROM jobs ORDER BY created_at LIMIT 3)",
         "DELETE FROM webhook_deliveries WHERE job_id IN (SELECT id FROM jobs ORDER BY created_at LIMIT 3)",
         "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs ORDER BY created_at LIMIT 3)")
    out = _restore(home, backup, capsys)
    assert "2 job(s)" in out and all(job_id in out for job_id in new), out
    kept = next(db.parent.glob("db.sqlite.before-restore-*"))
    assert str(kept) in out
    assert _count(db) == 10  # the backup's jobs, without the two new ones
    conn = sqlite3.connect(db)
    try:
        conn.executescript(_merge_recipe(db, kept))
    finally:
        conn.close()
    assert _count(db) == 12
    assert _count(db, f"SELECT count(*) FROM job_metrics WHERE job_id IN ('{new[0]}', '{new[1]}')") == 2
    assert _count(db, f"SELECT count(*) FROM jobs WHERE id = '{new[0]}' AND status = 'completed'") == 1


def test_a_deleted_databases_orphaned_wal_is_moved_aside_and_named(tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    backup, _ = take_backup(db, home / "backups" / "staging", "staging")
    wal = Path(str(db) + "-wal")
    wal.write_bytes(b"the deleted database's last writes")
    Path(str(db) + "-shm").write_bytes(b"shm")
    db.unlink()
    out = _restore(home, backup, capsys)
    aside = list(db.parent.glob("db.sqlite.before-restore-*-wal"))
    assert [path.read_bytes() for path in aside] == [b"the deleted database's last writes"]
    assert str(aside[0]) in out, out
    assert not wal.exists() and _count(db) == 5


def test_the_local_restore_steps_pick_a_backup_and_wait_for_jobs_in_flight_before_down():
    section = DOC.read_text(encoding="utf-8").split("### Local", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    steps = [line.split("#", 1)[0].split()[:2] for line in block.splitlines() if line.split("#", 1)[0].strip()]
    assert ["goldgate", "dr-drill"] not in steps, steps  # a drill first backs up the damaged database
    assert steps[:3] == [["goldgate", "dr-restore"], ["goldgate", "stuck"], ["goldgate", "down"]], steps
    assert "--list" in block and "--older-than 0" in block
