"""Two follow-ups of the DR drill and restore: two cloud drills started in the same second (the scheduled one and an
operator's) each get a scratch D1 of their own, within the name length the D1 stand-in enforces; and a restore
killed just after the restored file took the old database's place leaves no old WAL beside it, which SQLite would
replay into the restored database."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from r2_server import r2_admin

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.migrations import apply_with
from goldgate.ops import backup as backup_module
from goldgate.ops import dr
from goldgate.ops.dr import restore_into_stack, run_cloud_drill
from goldgate.ops.fingerprint import SqliteSource, fingerprint

TOKEN = "cf-followups-token-0123456789abcdef"
# The longest prefix `goldgate dr-drill --cloud` passes: a 41-character database name, then `-drill`.
LONGEST_PREFIX = "d" * 41 + "-drill"


class _SameSecond(datetime):
    """The drill's clock, a microsecond further on each reading: every drill of the test starts in the same second."""

    ticks = 0

    @classmethod
    def now(cls, tz=None):
        cls.ticks += 1
        return datetime(2026, 11, 29, 21, 0, 5, cls.ticks, tzinfo=UTC)


class _StillRunning:
    """A D1 client whose drill has not finished yet: its scratch database is still there when the next starts."""

    def __init__(self, d1: D1Client) -> None:
        self._d1 = d1
        self.scratch: list[str] = []

    def __getattr__(self, name):
        return getattr(self._d1, name)

    def delete_database(self, database_id: str) -> None:
        self.scratch.append(database_id)


@pytest.fixture
def cloud():
    with D1StandIn(TOKEN, export_polls=1, import_polls=1) as standin:
        api = CloudflareApi(TOKEN, standin.api_base)
        d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
        source = d1.create_database("goldgate-staging").uuid
        apply_with(lambda sql, params: d1.query(source, sql, params))
        d1.query(source, "INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                         "created_at, created_at_ms, updated_at) VALUES ('job-1', 'staging', 'sdxl-txt2img', "
                         "'sdxl-txt2img@1.0.0', '{}', 'abc', 'completed', '2026-11-20T00:00:00.000Z', 1, "
                         "'2026-11-20T00:10:00.000Z')")
        yield d1, source
        api.close()


def test_two_cloud_drills_started_in_the_same_second_both_pass(cloud, tmp_path: Path, monkeypatch) -> None:
    d1, source = cloud
    monkeypatch.setattr(dr, "datetime", _SameSecond)
    first = _StillRunning(d1)
    with r2_admin("goldgate-drill") as r2:
        try:
            earlier = run_cloud_drill("staging", first, source, r2, tmp_path / "a", scratch_prefix=LONGEST_PREFIX)
            later = run_cloud_drill("staging", d1, source, r2, tmp_path / "b", scratch_prefix=LONGEST_PREFIX)
        finally:
            for scratch in first.scratch:
                d1.delete_database(scratch)
    assert earlier.passed, earlier.error
    # Before: both named `<prefix>-20261129-210005`, and the later failed at creating its scratch database,
    # after its export had run and been stored.
    assert later.passed, later.error
    assert [db.name for db in d1.list_databases()] == ["goldgate-staging"]


def _wal_of(db: Path) -> bytes:
    """The WAL of `db` holding writes not yet in the database file, as a host killed mid-run leaves it."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    with conn:
        conn.execute("UPDATE jobs SET status = 'failed'")
    wal = Path(f"{db}-wal").read_bytes()
    conn.close()
    return wal


def test_a_restore_killed_after_the_swap_leaves_no_old_wal_beside_the_restored_database(
        tmp_path: Path, stack_db, monkeypatch) -> None:
    """The stack's damaged db.sqlite removed by hand, its -wal left behind; the restore is killed right after the
    restored file took its place."""
    backup, manifest = backup_module.take_backup(stack_db(tmp_path / "source.sqlite", jobs=50), tmp_path / "backups",
                                                 "staging")
    live = stack_db(tmp_path / "live" / "db.sqlite", jobs=300)
    wal = _wal_of(live)
    live.unlink()
    Path(f"{live}-wal").write_bytes(wal)
    real_replace = os.replace

    def killed_after_the_swap(src, dst, **kwargs):
        real_replace(src, dst, **kwargs)
        if Path(dst) == live:
            raise KeyboardInterrupt  # the restore is killed before it does anything more

    monkeypatch.setattr(os, "replace", killed_after_the_swap)
    with pytest.raises(KeyboardInterrupt):
        restore_into_stack(backup, live, "staging")
    monkeypatch.undo()
    # Before: the old WAL stayed beside the restored file, and the stack's next open replayed it into it.
    assert not Path(f"{live}-wal").exists()
    with sqlite3.connect(live) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert fingerprint(SqliteSource(conn)).differences(manifest.fingerprint) == []  # the backup, nothing else


def test_a_restore_whose_swap_fails_after_the_old_wal_went_keeps_the_copy_that_holds_its_writes(
        tmp_path: Path, stack_db, monkeypatch) -> None:
    """A WAL the copy aside could not checkpoint (it read the writes through it) is removed before the swap: if the
    swap then fails, the copy is all that holds those writes and must stay."""
    backup, _ = backup_module.take_backup(stack_db(tmp_path / "source.sqlite", jobs=20), tmp_path / "backups",
                                          "staging")
    live = stack_db(tmp_path / "live" / "db.sqlite", jobs=100)
    wal = _wal_of(live)
    keep = dr._keep_old_database

    def kept_with_its_wal_left(target: Path) -> Path:
        kept = keep(target)
        Path(f"{target}-wal").write_bytes(wal)
        return kept

    real_replace = os.replace

    def refused(src, dst, **kwargs):
        if Path(dst) == live:
            raise PermissionError(13, "Permission denied")
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(dr, "_keep_old_database", kept_with_its_wal_left)
    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(backup_module.RestoreFailed, match="but for its journal, whose writes the copy") as failed:
        restore_into_stack(backup, live, "staging")
    monkeypatch.undo()
    [kept] = [p for p in live.parent.iterdir() if ".before-restore-" in p.name]
    assert str(kept) in str(failed.value)
    assert sorted(p.name for p in live.parent.iterdir()) == sorted(["db.sqlite", kept.name])  # nothing staged
    with sqlite3.connect(kept) as conn:
        assert conn.execute("SELECT count(*) FROM jobs WHERE status != 'failed'").fetchone() == (0,)
