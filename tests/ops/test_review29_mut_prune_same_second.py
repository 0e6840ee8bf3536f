"""Review 29 (mut): the last prune hides a fuller backup only when it ran AFTER that backup was taken. A backup taken
in the prune's very second (a drill's backup and the retention prune on one schedule) holds the jobs a DELETE by
mistake took since, and is kept as the fuller one."""
import sqlite3
from datetime import UTC, datetime, timedelta

from goldgate.ops.backup import prune_backups, take_backup


def test_a_fuller_backup_taken_in_the_prunes_own_second_is_kept(tmp_path, stack_db):
    db = stack_db(tmp_path / "db.sqlite", jobs=20)
    backups = tmp_path / "backups"
    now = datetime.now(UTC).replace(microsecond=0)
    pruned = now - timedelta(days=100)
    fuller, _ = take_backup(db, backups, "staging", clock=lambda: pruned)   # 20 jobs, in the prune's second
    conn = sqlite3.connect(db)
    with conn:
        for table in ("job_metrics", "webhook_deliveries", "jobs"):   # the mistake: every job gone
            conn.execute(f"DELETE FROM {table}")
    conn.close()
    newest, _ = take_backup(db, backups, "staging", clock=lambda: now)

    report = prune_backups(backups, 90, now, pruned_at=pruned)

    assert fuller.exists() and newest.exists()
    assert report.kept_fuller and fuller.name in report.kept_fuller, report
