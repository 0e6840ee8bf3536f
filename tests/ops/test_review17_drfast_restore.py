"""A restore reads the backup's sha256 while SQLite copies it, and runs SQLite's integrity check beside the
table checksums: what it refuses, and in which words, is what it was when each step waited for the one
before."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from goldgate.ops import backup as backup_module
from goldgate.ops.backup import (
    BackupRefused,
    file_sha256,
    load_manifest,
    manifest_path,
    restore_backup,
    take_backup,
)


@pytest.fixture
def backup(tmp_path, stack_db):
    path, _ = take_backup(stack_db(tmp_path / "db.sqlite", jobs=2_000), tmp_path / "backups", "staging")
    return path


def _reseal(backup):
    """The manifest rewritten for the file as it is now: only what is inside the file can refuse it."""
    path = manifest_path(backup)
    raw = json.loads(path.read_text())
    raw["sha256"], raw["bytes"] = file_sha256(backup), backup.stat().st_size
    path.write_text(json.dumps(raw))


def _left(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("restored"))


def test_a_copy_failing_the_integrity_check_is_refused_for_that_not_for_its_checksums(backup, tmp_path):
    conn = sqlite3.connect(backup)
    conn.execute("PRAGMA writable_schema = ON")
    with conn:  # the index's pages stay in the file, used by nothing: the table checksums read it all alike
        conn.execute("DELETE FROM sqlite_master WHERE name = 'jobs_created_at'")
    conn.close()
    _reseal(backup)
    with pytest.raises(BackupRefused) as refused:
        restore_backup(backup, load_manifest(backup), tmp_path / "restored.sqlite")
    assert "fails SQLite's integrity check" in str(refused.value) and "is never used" in str(refused.value)
    assert "checksum" not in str(refused.value) and "definitions" not in str(refused.value)
    assert _left(tmp_path) == []


def test_a_backup_sqlite_cannot_open_is_refused_by_its_hash_first(backup, tmp_path):
    data = bytearray(backup.read_bytes())
    data[:100] = bytes(100)  # the header: SQLite sees no database at all
    backup.write_bytes(bytes(data))
    with pytest.raises(BackupRefused, match="the file is corrupted; refusing to restore") as refused:
        restore_backup(backup, load_manifest(backup), tmp_path / "restored.sqlite")
    assert "not a readable SQLite database" not in str(refused.value)
    assert _left(tmp_path) == []


def test_a_restore_interrupted_during_its_checksums_stops_the_integrity_check_and_leaves_no_copy(
        backup, tmp_path, monkeypatch):
    started, ended = threading.Event(), []

    def endless_check(conn):
        # A check that only the restore's stop ends (or, should none come, this test's own limit of a minute)
        limit = threading.Timer(60, conn.interrupt)
        limit.start()
        started.set()
        try:
            conn.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                         "SELECT count(*) FROM c")
        except sqlite3.OperationalError as exc:
            ended.append("by the test's limit" if limit.finished.is_set() else str(exc))
            raise
        finally:
            limit.cancel()
        return ["ok"]

    def interrupted(_source):
        assert started.wait(30)
        raise KeyboardInterrupt

    monkeypatch.setattr(backup_module, "_integrity_check", endless_check)
    monkeypatch.setattr(backup_module, "fingerprint", interrupted)
    with pytest.raises(KeyboardInterrupt):
        restore_backup(backup, load_manifest(backup), tmp_path / "restored.sqlite")
    assert ended == ["interrupted"]
    assert not [t for t in threading.enumerate() if t.name == "goldgate-dr"]
    assert _left(tmp_path) == []


def test_a_backup_interrupted_during_its_checksums_leaves_no_copy_and_no_reader(
        tmp_path, stack_db, monkeypatch):
    db = stack_db(tmp_path / "db.sqlite", jobs=2_000)

    def interrupted(_source):
        raise KeyboardInterrupt

    monkeypatch.setattr(backup_module, "fingerprint", interrupted)
    with pytest.raises(KeyboardInterrupt):
        take_backup(db, tmp_path / "backups", "staging")
    assert list((tmp_path / "backups").iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name == "goldgate-dr"]


def test_the_manifest_records_the_sha256_of_the_backup_file_and_it_restores(backup, tmp_path):
    manifest = load_manifest(backup)
    assert manifest.sha256 == file_sha256(backup) and manifest.bytes == backup.stat().st_size
    outcome = restore_backup(backup, manifest, tmp_path / "restored.sqlite")
    assert outcome.fingerprint.differences(manifest.fingerprint) == []
    assert _left(tmp_path) == ["restored.sqlite"]

