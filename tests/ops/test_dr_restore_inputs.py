"""`goldgate dr-restore` given the wrong file or a hand-edited manifest: one clear line, exit 1, nothing replaced."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.ops.backup import BackupManifest, file_sha256, manifest_path, take_backup
from goldgate.ops.fingerprint import SqliteSource, fingerprint


@pytest.fixture
def stack(tmp_path, stack_db):
    """A stopped stack's live database (10 jobs) and a backup of another database of it (200 jobs)."""
    home = tmp_path / "home"
    live = stack_db(LocalPlatform(home).db_path("staging"), jobs=10)
    backup, _ = take_backup(stack_db(tmp_path / "other" / "db.sqlite", jobs=200), tmp_path / "backups", "staging")
    return home, live, backup


def _restore(home, backup, capsys):
    code = main(["dr-restore", "staging", "--home", str(home), "--backup", str(backup)])
    said = capsys.readouterr()
    return code, said.err


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("version", [[1, 2], [None], [["0001_init.sql"]], "0001_init.sql"],
                         ids=["numbers", "null", "nested", "a string"])
def test_a_manifest_whose_schema_version_is_not_a_list_of_names_is_refused_in_one_line(stack, capsys, version):
    home, live, backup = stack
    path = manifest_path(backup)
    raw = json.loads(path.read_text())
    raw["fingerprint"]["schema_version"] = version
    path.write_text(json.dumps(raw))
    before = _digest(live)
    code, err = _restore(home, backup, capsys)
    assert code == 1
    assert err.startswith("goldgate: error: ") and len(err.splitlines()) == 1, err
    assert "malformed field" in err and "schema_version" in err
    assert _digest(live) == before
    assert list(live.parent.glob("db.sqlite.*")) == []  # no kept copy, no staged file


def test_a_mistyped_backup_path_says_there_is_no_backup_there_not_to_take_a_new_one(stack, capsys):
    home, live, backup = stack
    before = _digest(live)
    code, err = _restore(home, backup.with_name("20990101T000000.000000Z.sqlite"), capsys)
    assert code == 1
    assert "no backup at" in err and "check the path" in err and "take a new backup" not in err
    assert _digest(live) == before


def test_naming_the_manifest_instead_of_its_backup_names_the_backup_to_give(stack, capsys):
    home, live, backup = stack
    before = _digest(live)
    code, err = _restore(home, manifest_path(backup), capsys)
    assert code == 1
    assert f"name the backup itself, {backup.name}" in err and "take a new backup" not in err
    assert _digest(live) == before
    assert main(["dr-restore", "staging", "--home", str(home), "--backup", str(backup)]) == 0  # as it says


def test_a_cloud_drills_sql_backup_is_named_for_what_it_is_not_called_unreadable(stack, tmp_path, capsys):
    """The cloud drill's backup in R2 is a D1 export (SQL text) with the same kind of manifest: fetched and given to
    dr-restore, it is not a damaged backup, and the operator is told where it does go."""
    home, live, backup = stack
    conn = sqlite3.connect(backup)
    try:
        dump = "\n".join(conn.iterdump())
        print_ = fingerprint(SqliteSource(conn))
    finally:
        conn.close()
    sql = tmp_path / "r2" / "20261129T000000.000000Z.sql"
    sql.parent.mkdir()
    sql.write_text(dump)
    manifest = BackupManifest(stack="staging", kind="d1-sql", file=sql.name, bytes=sql.stat().st_size,
                              sha256=file_sha256(sql), created_at="2026-11-29T00:00:00.000Z",
                              source=f"d1:{'0' * 8}-0000-0000-0000-{'0' * 12}@bookmark", fingerprint=print_)
    manifest_path(sql).write_text(json.dumps(manifest.to_dict()))
    before = _digest(live)
    code, err = _restore(home, sql, capsys)
    assert code == 1 and len(err.splitlines()) == 1
    assert "is a D1 export" in err and "wrangler d1 execute" in err and "not a readable" not in err, err
    assert _digest(live) == before


def test_a_restore_interrupted_while_it_copies_leaves_the_database_and_no_copy_behind(stack, monkeypatch):
    # Ctrl-C while the backup is copied and verified (the long step for a large database): the stack's database
    # is as it was, and no partial or staged copy the size of the database stays beside it.
    from goldgate.ops import backup as backup_module

    home, live, backup = stack
    before = _digest(live)

    def interrupted(_source):
        raise KeyboardInterrupt

    monkeypatch.setattr(backup_module, "fingerprint", interrupted)
    assert main(["dr-restore", "staging", "--home", str(home), "--backup", str(backup)]) == 130  # "interrupted"
    assert _digest(live) == before
    assert sorted(p.name for p in live.parent.iterdir() if p.name.startswith(live.name + ".")) == []
