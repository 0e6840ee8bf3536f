"""The local D1 disaster-recovery drill: backup, restore into a fresh file, verify, refuse bad backups."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from goldgate.local.platform import LocalPlatform
from goldgate.ops.backup import BackupRefused, load_manifest, manifest_path, restore_backup, take_backup
from goldgate.ops.dr import latest_drill, restore_into_stack, run_local_drill

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def test_drill_passes_and_records_its_timings(tmp_path, stack_db):
    # The timings of a 100,000-job stack are bench/dr_drill.py's; here, what the drill reports and records.
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=2_000)
    result = run_local_drill("staging", db, home)
    assert result.passed, result.error
    assert result.row_counts["jobs"] == 2_000 and result.row_counts["job_metrics"] == 2_000
    assert result.schema_version == sorted(p.name for p in MIGRATIONS.glob("*.sql"))
    # RTO is the restore (into a fresh file, plus verification), from "we have a backup" to "a verified database"
    assert result.backup_s > 0 and result.restore_s > 0 and result.rto_s == result.restore_s
    # the newest write is the migration record (applied just now), newer than any job row; RPO counts from it
    assert result.last_write_at and result.last_write_at > "2026-11-02"
    written, finished = (datetime.fromisoformat(t) for t in (result.last_write_at, result.finished_at))
    assert 0 <= result.rpo_s <= (finished - written).total_seconds()
    recorded = latest_drill(home, "staging", "local")
    assert recorded["passed"] is True and recorded["rto_s"] == result.rto_s
    assert recorded["backup_s"] == result.backup_s and recorded["rpo_s"] == result.rpo_s
    # the scratch restore is gone, the backup and its manifest stay
    assert not list((home / "drills" / "staging").glob("scratch-*"))
    assert len(list((home / "backups" / "staging").glob("*.sqlite"))) == 1


@pytest.fixture
def backup(tmp_path, stack_db):
    db = stack_db(tmp_path / "db.sqlite", jobs=2_000)
    path, _ = take_backup(db, tmp_path / "backups", "staging")
    return path


def _restore(path, tmp_path):
    return restore_backup(path, load_manifest(path), tmp_path / "restored.sqlite")


def test_a_good_backup_restores_to_identical_content(backup, tmp_path):
    outcome = _restore(backup, tmp_path)
    conn = sqlite3.connect(outcome.target)
    assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 2_000
    assert conn.execute("SELECT inputs_json FROM jobs LIMIT 1").fetchone()[0].endswith("-- line two\"}")


def test_a_corrupted_backup_is_refused(backup, tmp_path):
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0xFF
    backup.write_bytes(bytes(data))
    with pytest.raises(BackupRefused, match="corrupted; refusing to restore"):
        _restore(backup, tmp_path)
    assert not (tmp_path / "restored.sqlite").exists()


def test_a_truncated_backup_is_refused(backup, tmp_path):
    data = backup.read_bytes()
    backup.write_bytes(data[: len(data) // 3])
    with pytest.raises(BackupRefused, match="truncated; refusing to restore"):
        _restore(backup, tmp_path)


def _rewrite_manifest_hash(backup):
    from goldgate.ops.backup import file_sha256

    path = manifest_path(backup)
    raw = json.loads(path.read_text())
    raw["sha256"], raw["bytes"] = file_sha256(backup), backup.stat().st_size
    path.write_text(json.dumps(raw))


def test_a_damaged_page_is_refused_even_when_the_manifest_hash_was_rewritten(backup, tmp_path):
    data = bytearray(backup.read_bytes())
    page = 4096
    for i in range(page * 3, page * 3 + 200):  # scribble over a b-tree page header
        data[i] = 0x5A
    backup.write_bytes(bytes(data))
    _rewrite_manifest_hash(backup)
    with pytest.raises(BackupRefused, match="integrity check|not a readable SQLite|checksum|rows"):
        _restore(backup, tmp_path)


def test_changed_content_is_caught_by_the_table_checksums(backup, tmp_path):
    conn = sqlite3.connect(backup)
    with conn:
        conn.execute("UPDATE jobs SET status = 'completed' WHERE id = 'job-0000050'")
    conn.close()
    _rewrite_manifest_hash(backup)
    with pytest.raises(BackupRefused, match="table jobs: content checksum differs"):
        _restore(backup, tmp_path)


def test_a_backup_without_a_manifest_is_refused(backup, tmp_path):
    manifest_path(backup).unlink()
    with pytest.raises(BackupRefused, match="has no manifest"):
        load_manifest(backup)


def test_a_garbled_manifest_is_refused(backup, tmp_path):
    manifest_path(backup).write_text("{not json")
    with pytest.raises(BackupRefused, match="not valid JSON"):
        load_manifest(backup)
    manifest_path(backup).write_text(json.dumps({"format": "goldgate.d1-backup.v1", "stack": "staging"}))
    with pytest.raises(BackupRefused, match="malformed field"):
        load_manifest(backup)


def test_a_drill_without_a_database_is_recorded_as_failed(tmp_path):
    result = run_local_drill("staging", tmp_path / "missing.sqlite", tmp_path)
    assert not result.passed and "goldgate up staging" in result.error
    assert latest_drill(tmp_path, "staging", "local")["passed"] is False


def test_restore_into_a_stack_replaces_its_database_and_keeps_the_old_one(backup, tmp_path, stack_db):
    live = stack_db(tmp_path / "live" / "db.sqlite", jobs=10)
    kept = restore_into_stack(backup, live, "staging").kept
    assert kept is not None and kept != live and kept.exists()
    assert sqlite3.connect(live).execute("SELECT count(*) FROM jobs").fetchone()[0] == 2_000
    assert sqlite3.connect(kept).execute("SELECT count(*) FROM jobs").fetchone()[0] == 10


def test_restore_over_a_corrupt_database_replaces_it_and_keeps_the_corrupt_file(backup, tmp_path):
    live = tmp_path / "live" / "db.sqlite"
    live.parent.mkdir()
    live.write_bytes(b"torn write, not a database " * 200)  # the reason an operator restores
    kept = restore_into_stack(backup, live, "staging").kept
    assert sqlite3.connect(live).execute("SELECT count(*) FROM jobs").fetchone()[0] == 2_000
    assert kept is not None and kept != live and kept.read_bytes() == b"torn write, not a database " * 200


def test_restore_into_a_stack_never_brought_up_creates_its_database(backup, tmp_path, capsys):
    from goldgate.cli import main

    home = tmp_path / "new-machine"
    assert main(["dr-restore", "staging", "--home", str(home), "--backup", str(backup)]) == 0
    db = LocalPlatform(home).db_path("staging")
    assert sqlite3.connect(db).execute("SELECT count(*) FROM jobs").fetchone()[0] == 2_000
    assert "not a readable SQLite database" not in capsys.readouterr().err


def _disk_fills_at(monkeypatch, marker, pages=8):
    """Files whose name holds `marker` can grow to `pages` pages only: SQLite's own SQLITE_FULL, as on a full disk."""
    real_connect = sqlite3.connect

    def connect(database, *args, **kwargs):
        conn = real_connect(database, *args, **kwargs)
        if marker in str(database):
            conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)


def test_a_full_disk_mid_restore_blames_the_disk_not_the_backup_and_keeps_the_live_database(
        backup, tmp_path, stack_db, monkeypatch):
    from goldgate.errors import GoldgateError

    live = stack_db(tmp_path / "live" / "db.sqlite", jobs=10)
    before = live.read_bytes()
    _disk_fills_at(monkeypatch, ".restoring")
    with pytest.raises(GoldgateError) as err:
        restore_into_stack(backup, live, "staging")
    assert not isinstance(err.value, BackupRefused)
    assert "database or disk is full" in str(err.value) and "not a readable SQLite database" not in str(err.value)
    assert live.read_bytes() == before
    assert sorted(p.name for p in live.parent.iterdir()) == ["db.sqlite"]  # no half-written copies left


def test_a_full_disk_while_keeping_the_old_database_is_a_clear_error_and_replaces_nothing(
        backup, tmp_path, stack_db, monkeypatch):
    from goldgate.errors import GoldgateError

    live = stack_db(tmp_path / "live" / "db.sqlite", jobs=1_000)
    before = live.read_bytes()
    _disk_fills_at(monkeypatch, ".before-restore-", pages=4)
    with pytest.raises(GoldgateError, match="database or disk is full"):
        restore_into_stack(backup, live, "staging")
    assert live.read_bytes() == before
    assert sorted(p.name for p in live.parent.iterdir()) == ["db.sqlite"]


def test_a_backup_from_a_newer_checkout_is_refused_before_anything_is_replaced(backup, tmp_path, stack_db):
    conn = sqlite3.connect(backup)
    with conn:
        conn.execute("INSERT INTO d1_migrations (name) VALUES ('9999_from_the_future.sql')")
    conn.close()
    _rewrite_manifest_fingerprint(backup)
    live = stack_db(tmp_path / "live" / "db.sqlite", jobs=10)
    before = live.read_bytes()
    with pytest.raises(BackupRefused, match="9999_from_the_future.sql"):
        restore_into_stack(backup, live, "staging")
    assert live.read_bytes() == before
    assert sorted(p.name for p in live.parent.iterdir()) == ["db.sqlite"]


def _rewrite_manifest_fingerprint(backup):
    """The manifest as `take_backup` would have written it for the file as it is now (a consistent backup)."""
    from goldgate.ops.fingerprint import SqliteSource, fingerprint

    path = manifest_path(backup)
    raw = json.loads(path.read_text())
    conn = sqlite3.connect(backup)
    raw["fingerprint"] = fingerprint(SqliteSource(conn)).to_dict()
    conn.close()
    path.write_text(json.dumps(raw))
    _rewrite_manifest_hash(backup)


def test_restore_refuses_another_stacks_backup_unless_its_stack_is_named(backup, tmp_path, stack_db, capsys):
    from goldgate.cli import main

    home = tmp_path / "home"
    live = stack_db(LocalPlatform(home).db_path("prod"), jobs=10, stack="prod")
    before = live.read_bytes()
    restore = ["dr-restore", "prod", "--home", str(home), "--backup", str(backup)]
    assert main(restore) == 1
    err = capsys.readouterr().err
    assert "taken from stack staging, not prod" in err and "--from-stack staging" in err
    assert main([*restore, "--from-stack", "qa"]) == 1
    assert "taken from stack staging, not qa" in capsys.readouterr().err
    # nothing beside the database but the locks a restore holds the stack with (as an up or a deploy does, and as
    # a prune holds its database)
    assert live.read_bytes() == before
    assert {p.name for p in live.parent.iterdir()} - {"up.lock", "prune.lock"} == {"db.sqlite"}
    assert main([*restore, "--from-stack", "staging"]) == 0
    assert sqlite3.connect(live).execute("SELECT count(*) FROM jobs").fetchone()[0] == 2_000


def test_a_home_whose_path_holds_uri_characters_is_backed_up_and_restored_from_the_real_files(tmp_path, stack_db):
    # '#' and '?' end the path of a SQLite URI: read as one, the drill would copy some other (new, empty) file
    home = tmp_path / "ops#1?draft" / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=50)
    result = run_local_drill("staging", db, home)
    assert result.passed, result.error
    assert result.row_counts["jobs"] == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ops#1?draft"]  # no stray database beside it
    backup = next((home / "backups" / "staging").glob("*.sqlite"))
    live = home / "live%20db" / "db.sqlite"
    restore_into_stack(backup, live, "staging")
    assert sqlite3.connect(live).execute("SELECT count(*) FROM jobs").fetchone()[0] == 50


def test_a_drill_of_an_empty_database_file_fails_instead_of_verifying_nothing(tmp_path, capsys):
    from goldgate.cli import main

    home = tmp_path / "home"
    db = LocalPlatform(home).db_path("staging")
    db.parent.mkdir(parents=True)
    db.write_bytes(b"")  # a database truncated to nothing: there is nothing to recover from its backup
    assert main(["dr-drill", "staging", "--home", str(home)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "holds no tables" in out
    assert latest_drill(home, "staging", "local")["passed"] is False
    assert not list((home / "backups" / "staging").glob("*.sqlite"))


def test_a_drill_of_a_live_wal_database_leaves_only_the_backup_and_its_manifest(tmp_path, stack_db):
    # The stack's database is in WAL mode; a copy that kept that mode would grow -wal/-shm files beside it
    # whenever it is read, and those would travel with the backups directory.
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=100)
    sqlite3.connect(db).execute("PRAGMA journal_mode = WAL").close()
    result = run_local_drill("staging", db, home)
    assert result.passed, result.error
    assert sorted(p.name.split(".", 2)[-1] for p in (home / "backups" / "staging").iterdir()) == \
        ["manifest.json", "sqlite"]


def test_a_table_whose_name_looks_like_an_internal_pattern_is_still_verified(tmp_path, stack_db):
    # '_' is a LIKE wildcard: 'scf_settings' and 'sqlitex' are ordinary tables, not D1's `_cf_*` nor SQLite's
    # `sqlite_*`; a backup that lost their rows must not restore as "verified".
    db = stack_db(tmp_path / "db.sqlite", jobs=20)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TABLE scf_settings (k TEXT PRIMARY KEY, v TEXT)")
        conn.execute("CREATE TABLE sqlitex (k TEXT PRIMARY KEY)")
        conn.execute("INSERT INTO scf_settings VALUES ('retention_days', '30')")
        conn.execute("INSERT INTO sqlitex VALUES ('a')")
    conn.close()
    path, manifest = take_backup(db, tmp_path / "backups", "staging")
    assert manifest.fingerprint.row_counts["scf_settings"] == 1 and manifest.fingerprint.row_counts["sqlitex"] == 1
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM scf_settings")
    conn.close()
    _rewrite_manifest_hash(path)
    with pytest.raises(BackupRefused, match="table scf_settings: 0 rows, expected 1"):
        _restore(path, tmp_path)


def test_a_hostile_manifest_is_refused_in_one_line_not_a_traceback(backup, tmp_path):
    path = manifest_path(backup)
    good = json.loads(path.read_text())
    path.write_text("[" * 200_000)  # nesting deeper than the JSON parser's recursion
    with pytest.raises(BackupRefused, match="not valid JSON"):
        load_manifest(backup)
    path.write_text(json.dumps(good).replace(f'"bytes": {good["bytes"]}', '"bytes": 1e999'))
    with pytest.raises(BackupRefused, match="malformed field"):
        load_manifest(backup)
    good["fingerprint"]["row_counts"]["jobs"] = float("inf")
    path.write_text(json.dumps(good))
    with pytest.raises(BackupRefused, match="malformed field"):
        load_manifest(backup)
    with path.open("r+b") as f:  # sparse: oversized without filling the disk
        f.truncate(64 * 1024 * 1024)
    with pytest.raises(BackupRefused, match="it was not read"):
        load_manifest(backup)
    assert not (tmp_path / "restored.sqlite").exists()


def test_a_hostile_drill_record_is_a_one_line_error(tmp_path):
    from goldgate.errors import StateError

    record = tmp_path / "drills" / "staging" / "latest-local.json"
    record.parent.mkdir(parents=True)
    record.write_text("{\"a\":" * 200_000)
    with pytest.raises(StateError, match="is corrupt"):
        latest_drill(tmp_path, "staging", "local")
    with record.open("r+b") as f:
        f.truncate(64 * 1024 * 1024)
    with pytest.raises(StateError, match="was not read"):
        latest_drill(tmp_path, "staging", "local")


def test_an_absurd_timestamp_in_the_data_does_not_crash_the_drill(tmp_path, stack_db):
    db = stack_db(tmp_path / "db.sqlite", jobs=20)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, seen_at INTEGER, read_at TEXT)")
        conn.execute("INSERT INTO notes VALUES (1, ?, '9999-12-31T23:59:59-23:59')", (10 ** 18,))
    conn.close()
    result = run_local_drill("staging", db, tmp_path / "home")
    assert result.passed, result.error
    # The newest real write (the migrations' applied_at, now): the absurd values are not times. A year check
    # ("2026-") held only until the calendar turned.
    written = datetime.fromisoformat(result.last_write_at)
    assert datetime(2026, 11, 1, tzinfo=UTC) <= written <= datetime.now(UTC) + timedelta(minutes=1), written


@pytest.mark.parametrize("where", ["/", "."])
def test_a_backup_path_without_a_file_name_is_a_one_line_refusal_not_a_traceback(where, tmp_path, stack_db):
    # A library caller (not the CLI, which checks --backup first) naming a root or `.`: there is no
    # backup file there to find a manifest beside, and nothing may be replaced.
    target = stack_db(tmp_path / "stack" / "db.sqlite", jobs=5)
    before = target.read_bytes()
    with pytest.raises(BackupRefused, match="names no backup file") as refused:
        restore_into_stack(Path(where), target, "staging")
    assert "\n" not in str(refused.value)
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["db.sqlite"]


def test_a_drill_recorded_before_each_target_kept_its_own_record_still_counts_for_its_target(tmp_path, stack_db):
    assert run_local_drill("staging", stack_db(tmp_path / "db.sqlite", jobs=5), tmp_path / "home").passed
    drills = tmp_path / "home" / "drills" / "staging"
    (drills / "latest-local.json").rename(drills / "latest.json")  # as an older goldgate left it
    assert latest_drill(tmp_path / "home", "staging", "local")["passed"] is True
    assert latest_drill(tmp_path / "home", "staging", "cloud") is None
