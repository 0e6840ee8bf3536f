"""`goldgate dr-restore`, as the README and docs/D1_DISASTER_RECOVERY.md have an operator run it: `--list --json`
(the README: every command that reads state takes `--json`) failed with "unrecognized arguments"; a restore
with `--json` answers what it did. A restore of PROD's backup into STAGING (`--from-stack prod`) said that
STAGING's own jobs were "created after" the backup and offered to merge them back: merged, the two stacks' jobs
would mix."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "ops"))  # the ops test kit: a stack database with jobs
from ops_fixtures import build_stack_db

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.ops.backup import take_backup


def _backup(home: Path, stack: str, db: Path) -> Path:
    backup, _ = take_backup(db, home / "backups" / stack, stack)
    return backup


def test_list_json_gives_each_backup_structured(tmp_path, capsys):
    home = tmp_path / "home"
    db = build_stack_db(LocalPlatform(home).db_path("staging"), jobs=12)
    backup = _backup(home, "staging", db)
    capsys.readouterr()
    assert main(["dr-restore", "staging", "--list", "--json", "--home", str(home)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["stack"] == "staging" and len(data["backups"]) == 1
    listed = data["backups"][0]
    assert listed["backup"] == str(backup) and listed["jobs"] == 12 and listed["problem"] is None
    assert listed["taken_at"] and listed["last_write_at"] and listed["newest_migration"].endswith(".sql")


def test_a_restore_with_json_answers_its_report(tmp_path, capsys):
    home = tmp_path / "home"
    db = build_stack_db(LocalPlatform(home).db_path("staging"), jobs=12)
    backup = _backup(home, "staging", db)
    capsys.readouterr()
    assert main(["dr-restore", "staging", "--backup", str(backup), "--json", "--home", str(home)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backup"] == str(backup) and report["target"] == str(db)
    assert Path(report["kept"]).is_file() and report["lost_jobs"] == 0 and report["from_another_stack"] is False


def test_prods_backup_into_staging_calls_stagings_jobs_its_own_and_offers_no_merge(tmp_path, capsys):
    home = tmp_path / "home"
    platform = LocalPlatform(home)
    prod = build_stack_db(platform.db_path("prod"), jobs=6, stack="prod")
    backup = _backup(home, "prod", prod)
    staging = build_stack_db(platform.db_path("staging"), jobs=6)
    conn = sqlite3.connect(staging)
    with conn:
        conn.execute("UPDATE jobs SET id = 'staging-' || id")  # STAGING's own jobs, none of them PROD's
    conn.close()
    capsys.readouterr()
    assert main(["dr-restore", "staging", "--backup", str(backup), "--from-stack", "prod", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    # Before: "WARNING: 6 job(s) of the replaced database are not in the backup (created after it ...) merge them
    # back as docs/D1_DISASTER_RECOVERY.md says"
    assert "6 job(s) of staging's replaced database are staging's own, not in prod's backup" in out, out
    assert "created after" not in out and "merge them back" not in out and "do not merge them" in out
    assert "goldgate dr-restore staging --list" in out
    capsys.readouterr()
    assert main(["dr-restore", "staging", "--list", "--json", "--home", str(home)]) == 0
    assert json.loads(capsys.readouterr().out)["backups"] == []  # STAGING took none; PROD's is not listed as its


def test_a_cross_stack_restore_says_so_in_json(tmp_path, capsys):
    home = tmp_path / "home"
    platform = LocalPlatform(home)
    backup = _backup(home, "prod", build_stack_db(platform.db_path("prod"), jobs=4, stack="prod"))
    build_stack_db(platform.db_path("staging"), jobs=2)
    capsys.readouterr()
    assert main(["dr-restore", "staging", "--backup", str(backup), "--from-stack", "prod", "--json",
                 "--home", str(home)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["from_another_stack"] is True and report["backup_stack"] == "prod" and report["stack"] == "staging"
