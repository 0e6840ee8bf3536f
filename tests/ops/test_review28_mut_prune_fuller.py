"""Which old backup a prune keeps for the jobs the newest one lacks (session 28 mutation audit of prune_backups).

The tests so far kept one old backup against a newest one holding none: any old backup holding more than the newest
passed them. Here the kept one must be the fullest, the latest of equals, and never a manifest left without its
backup by an interrupted prune."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from goldgate.ops.backup import manifest_path, prune_backups, take_backup

NOW = datetime.now(UTC)


def _keep_only(db: Path, jobs: int) -> None:
    """Leaves the `jobs` newest jobs (and their rows) in the database."""
    conn = sqlite3.connect(db)
    with conn:
        doomed = f"SELECT id FROM jobs ORDER BY created_at DESC, id LIMIT -1 OFFSET {jobs}"
        conn.execute(f"DELETE FROM job_metrics WHERE job_id IN ({doomed})")
        conn.execute(f"DELETE FROM webhook_deliveries WHERE job_id IN ({doomed})")
        conn.execute(f"DELETE FROM jobs WHERE id IN ({doomed})")
    conn.close()


def _backups(tmp_path: Path, stack_db, jobs_by_age: list[tuple[int, int]]) -> tuple[Path, list[Path]]:
    """Backups of a database holding, oldest first, (days ago, jobs) each: jobs only ever go down, as after prunes
    and mistakes. The directory and the backups, oldest first."""
    db = stack_db(tmp_path / "db.sqlite", jobs=max(jobs for _, jobs in jobs_by_age))
    directory = tmp_path / "backups"
    taken = []
    for days, jobs in jobs_by_age:
        _keep_only(db, jobs)
        when = NOW - timedelta(days=days)
        taken.append(take_backup(db, directory, "staging", clock=lambda when=when: when)[0])
    return directory, taken


def test_the_fullest_old_backup_is_the_one_kept_not_the_first_holding_more(tmp_path, stack_db):
    directory, (some, most, fewer, newest) = _backups(tmp_path, stack_db, [(150, 40), (140, 40), (130, 20), (0, 0)])
    pruned = prune_backups(directory, 90, NOW)
    assert most.exists() and manifest_path(most).exists()
    assert not some.exists() and not fewer.exists()
    assert pruned.kept_fuller is not None and pruned.kept_fuller.startswith(f"{most.name}, ")
    assert "holds 40 jobs" in pruned.kept_fuller and f"({newest.name}) 0" in pruned.kept_fuller


def test_of_old_backups_holding_as_many_jobs_the_latest_is_kept(tmp_path, stack_db):
    directory, (earlier, later, newest) = _backups(tmp_path, stack_db, [(150, 30), (120, 30), (0, 10)])
    pruned = prune_backups(directory, 90, NOW)
    assert later.exists() and not earlier.exists() and newest.exists()
    assert pruned.kept_fuller is not None and pruned.kept_fuller.startswith(f"{later.name}, ")


def test_a_manifest_an_interrupted_prune_left_without_its_backup_is_not_kept_as_the_fuller_one(tmp_path, stack_db):
    directory, (gone, newest) = _backups(tmp_path, stack_db, [(150, 40), (0, 5)])
    gone.unlink()          # the prune deletes the backup before its manifest, and was stopped between the two
    pruned = prune_backups(directory, 90, NOW)
    assert pruned.kept_fuller is None, pruned.kept_fuller
    assert not manifest_path(gone).exists(), "the leftover manifest restores nothing and goes"
    assert sorted(p.name for p in directory.iterdir()) == sorted([newest.name, manifest_path(newest).name])
