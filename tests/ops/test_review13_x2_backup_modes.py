"""A DR backup is a full copy of the stack's database, every prompt in it: its directory is the owner's only (0700)
and the backup and its manifest are 0600, as the stack's own directory is, whatever the umask. So are the drills
directory (a local drill's restore scratch, a cloud drill's D1 export and its SQLite copy) and its records. Before,
under the common umask 022, backups/<stack>/ was 0755 and each <stamp>.sqlite 0644: any user of the host could
read every prompt. Each test runs under umask 022."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from r2_server import r2_admin

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.local.platform import LocalPlatform
from goldgate.migrations import apply_with
from goldgate.ops import backup as backups
from goldgate.ops.backup import RestoreFailed, load_manifest, restore_backup, take_backup
from goldgate.ops.dr import latest_drill, run_cloud_drill, run_local_drill

TOKEN = "cf-drill-token-abcdef0123456789"


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _modes(directory: Path) -> dict[str, int]:
    return {p.name: _mode(p) for p in directory.iterdir()}


def test_a_local_drill_leaves_its_backup_and_records_readable_by_the_owner_only(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=10)
    result = run_local_drill("staging", db, home)
    assert result.passed, result.error
    backup = Path(result.backup)
    assert _mode(home / "backups" / "staging") == 0o700
    assert _modes(home / "backups" / "staging") == {backup.name: 0o600,
                                                    backup.name.replace(".sqlite", ".manifest.json"): 0o600}
    drills = home / "drills" / "staging"
    assert _mode(drills) == 0o700
    modes = _modes(drills)
    assert "latest-local.json" in modes and len(modes) == 2 and set(modes.values()) == {0o600}, modes
    assert latest_drill(home, "staging", "local")["passed"] is True  # still read back by the checklist


def test_backups_an_older_goldgate_left_open_are_closed_by_the_next_backup(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=3)
    directory = home / "backups" / "staging"
    directory.mkdir(parents=True)  # 0755 under the umask, as before
    old = directory / "20261101T000000.000000Z.sqlite"
    old.write_bytes(db.read_bytes())
    assert _mode(directory) == 0o755 and _mode(old) == 0o644
    take_backup(db, directory, "staging")
    assert _mode(directory) == 0o700  # the older copy in it is no one else's to reach now


def test_the_copy_is_private_before_sqlite_writes_into_it(tmp_path, stack_db, monkeypatch):
    """No moment when a partial backup or restore, already holding rows, is readable by others."""
    db = stack_db(tmp_path / "stack" / "d1.sqlite", jobs=3)
    seen: dict[str, int] = {}
    connect = sqlite3.connect

    def connect_and_note(database, *args, **kwargs):  # the real connect, after noting the file's mode
        name = str(database)
        if name.endswith((".partial", ".restoring")):
            seen[Path(name).suffix] = _mode(Path(name))
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(backups.sqlite3, "connect", connect_and_note)
    backup, _ = take_backup(db, tmp_path / "backups", "staging")
    restored = restore_backup(backup, load_manifest(backup), tmp_path / "restored.sqlite").target
    assert seen == {".partial": 0o600, ".restoring": 0o600}
    assert _mode(restored) == 0o600 and _mode(backup) == 0o600
    assert sqlite3.connect(restored).execute("SELECT count(*) FROM jobs").fetchone() == (3,)


def test_a_restore_whose_copy_cannot_be_made_says_so_and_judges_no_backup(tmp_path, stack_db, monkeypatch):
    """The copy's file, made up front, fails as SQLite's own open of it did: the restore's place is named. (A
    directory the user may not write into refuses the open with EACCES; root is refused nothing, so it is raised.)"""
    db = stack_db(tmp_path / "stack" / "d1.sqlite", jobs=3)
    backup, manifest = take_backup(db, tmp_path / "backups", "staging")
    real_open = os.open

    def refused(path, flags, *args, **kwargs):
        if str(path).endswith(".restoring"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(backups.os, "open", refused)
    with pytest.raises(RestoreFailed, match="cannot write the restored copy") as failed:
        restore_backup(backup, manifest, tmp_path / "restored" / "db.sqlite")
    monkeypatch.undo()
    assert "Permission denied" in str(failed.value) and "was not judged" in str(failed.value)
    assert str(tmp_path / "restored") in str(failed.value)


def test_a_cloud_drill_keeps_its_export_in_a_directory_of_the_owner_only(tmp_path):
    with (D1StandIn(TOKEN, export_polls=1, import_polls=1) as standin, r2_admin("goldgate-drill") as r2,
          CloudflareApi(TOKEN, standin.api_base) as api):
        d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
        source = d1.create_database("goldgate-staging").uuid
        apply_with(lambda sql, params: d1.query(source, sql, params))
        d1.query(source, "INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                         "created_at, created_at_ms, updated_at) VALUES ('job-1', 'staging', 'sdxl-txt2img', "
                         "'sdxl-txt2img@1.0.0', '{\"prompt\": \"a secret plan\"}', ?, 'completed', "
                         "'2026-11-20T00:00:00.000Z', 1, '2026-11-20T00:10:00.000Z')", ["0" * 32])
        result = run_cloud_drill("staging", d1, source, r2, tmp_path)
    assert result.passed, result.error
    drills = tmp_path / "drills" / "staging"  # where the export and its SQLite copy were while the drill ran
    assert _mode(drills) == 0o700
    modes = _modes(drills)
    assert "latest-cloud.json" in modes and set(modes.values()) == {0o600}, modes


def test_backup_and_drill_stamps_are_read_by_one_parser():
    assert backups.parse_stamp("20261101T010203.456789Z") == datetime(2026, 11, 1, 1, 2, 3, 456789, UTC)
    assert backups.parse_stamp("20261101T010203.456Z") == datetime(2026, 11, 1, 1, 2, 3, 456000, UTC)
    assert backups.parse_stamp("20261399T010203.456Z") is None
