"""prune_backups keeps the fullest backup taken since the stack's last prune (found by the session-28 mutation audit)."""
import sqlite3
from datetime import UTC, datetime, timedelta

from goldgate.ops.backup import prune_backups, take_backup


def _run(db, *statements):
    conn = sqlite3.connect(db)
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


def _delete(limit: str = "") -> tuple[str, ...]:
    chosen = f"(SELECT id FROM jobs ORDER BY created_at {limit})"
    return (f"DELETE FROM job_metrics WHERE job_id IN {chosen}",
            f"DELETE FROM webhook_deliveries WHERE job_id IN {chosen}",
            f"DELETE FROM jobs WHERE id IN {chosen}")


def test_a_fuller_backup_before_the_last_prune_does_not_hide_one_after_it(tmp_path, stack_db):
    """A DELETE by mistake after a scheduled prune: the backup taken after that prune holds the jobs the mistake
    took. An older backup, fuller only because the prune deleted jobs since, must not make the drill delete it."""
    db = stack_db(tmp_path / "db.sqlite", jobs=40)
    backups = tmp_path / "backups"
    now = datetime.now(UTC)
    before_prune, _ = take_backup(db, backups, "staging", clock=lambda: now - timedelta(days=130))  # 40 jobs
    _run(db, *_delete("LIMIT 10"))                                                  # the scheduled prune: 30 left
    after_prune, _ = take_backup(db, backups, "staging", clock=lambda: now - timedelta(days=100))   # 30 jobs
    _run(db, *_delete())                                                            # the mistake: none left
    newest, _ = take_backup(db, backups, "staging", clock=lambda: now)

    report = prune_backups(backups, 90, now, pruned_at=now - timedelta(days=120))

    assert after_prune.exists(), "the backup holding the 30 jobs deleted by mistake was pruned"
    assert newest.exists()
    assert not before_prune.exists()   # its extra jobs are the ones the prune deleted: it goes as due
    assert report.kept_fuller and after_prune.name in report.kept_fuller
