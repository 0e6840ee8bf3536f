"""`goldgate prune` of a local stack says what to do about its own database file: a local prune names no
database, so "check --database-id" and "prune it as that stack" sent the operator the wrong way."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prune_after_restoring_prods_backup_into_staging_says_why_not_to_check_a_database_id(tmp_path, stack_db,
                                                                                                capsys):
    home = tmp_path / "home"
    platform = LocalPlatform(home)
    stack_db(platform.db_path("prod"), jobs=50, stack="prod", start=(datetime.now(UTC) - timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert main(["dr-drill", "prod", "--home", str(home)]) == 0
    backup = next((home / "backups" / "prod").glob("*.sqlite"))
    # docs/D1_DISASTER_RECOVERY.md: PROD's data restored into STAGING on purpose
    assert main(["dr-restore", "staging", "--home", str(home), "--backup", str(backup), "--from-stack", "prod"]) == 0
    capsys.readouterr()
    staging = platform.db_path("staging")
    before = _digest(staging)

    assert main(["prune", "staging", "--home", str(home), "--keep-days", "30"]) == 1
    err = capsys.readouterr().err
    assert "holds the jobs of stack 'prod'" in err and "--from-stack" in err, err
    assert "--database-id" not in err and "prune it as that stack" not in err
    assert _digest(staging) == before

    # as it says: once STAGING has run a job of its own, its copy of PROD's jobs is pruned as STAGING's
    conn = sqlite3.connect(staging)
    with conn:
        conn.execute("CREATE TEMP TABLE own AS SELECT * FROM jobs ORDER BY created_at DESC LIMIT 1")
        conn.execute("UPDATE own SET id = 'job-staging', stack = 'staging', runpod_job_id = 'rp-staging', "
                     "created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), updated_at = created_at, "
                     "finished_at = created_at")
        conn.execute("INSERT INTO jobs SELECT * FROM own")
    conn.close()
    assert main(["prune", "staging", "--home", str(home), "--keep-days", "30", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["deleted"]["jobs"] == 50 and report["remaining"]["jobs"] == 1


def test_prune_of_a_local_file_that_is_no_goldgate_database_says_to_bring_the_stack_up(tmp_path, capsys):
    home = tmp_path / "home"
    db = LocalPlatform(home).db_path("staging")
    db.parent.mkdir(parents=True)
    db.write_bytes(b"")  # an empty file where the stack's database belongs
    assert main(["prune", "staging", "--home", str(home), "--keep-days", "30"]) == 1
    err = capsys.readouterr().err
    assert "not a migrated goldgate database" in err and "`goldgate up staging`" in err, err
    assert "--database-id" not in err
