"""Review 29 (lead, from the final review): a drill after a prune (`goldgate prune`, or the host's retention cron)
found the finished jobs the prune deleted and advised restoring the backup before it, at every drill of a stack that
prunes on a schedule. Deletions the prune made are now called its own, with no restore advice; an unfinished job
deleted (which no prune deletes) still is named as a possible mistake, with the backup to restore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops_fixtures import run_sql

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform


@pytest.fixture(autouse=True)
def _local_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)


def _drill(home: Path, capsys: pytest.CaptureFixture) -> dict:
    assert main(["dr-drill", "staging", "--home", str(home), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _prune(home: Path, capsys: pytest.CaptureFixture) -> int:
    assert main(["prune", "staging", "--keep-days", "7", "--home", str(home), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["deleted"]["jobs"]


def test_finished_jobs_a_prune_deleted_are_its_own_not_a_mistake(tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    stack_db(LocalPlatform(home).db_path("staging"), jobs=20)
    _drill(home, capsys)
    deleted = _prune(home, capsys)
    assert deleted > 0
    second = _drill(home, capsys)
    assert second["changes_since_previous"]["tables"]["jobs"]["deleted"] == deleted
    assert second["changes_since_previous"]["jobs_deleted_unfinished"] == 0
    [note] = [n for n in second["notes"] if "since the backup before this one" in n]
    assert f"{deleted} finished job(s) deleted, as the prune at" in note and "restore" not in note, note


def test_an_unfinished_job_deleted_after_a_prune_is_still_named_with_the_backup_to_restore(tmp_path, stack_db,
                                                                                          capsys):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=20)
    run_sql(db, "UPDATE jobs SET status = 'queued', finished_at = NULL WHERE id = (SELECT max(id) FROM jobs)")
    first = _drill(home, capsys)
    _prune(home, capsys)
    run_sql(db, "DELETE FROM jobs WHERE status = 'queued'")  # the mistake, after the prune
    second = _drill(home, capsys)
    assert second["changes_since_previous"]["jobs_deleted_unfinished"] == 1
    [note] = [n for n in second["notes"] if "since the backup before this one" in n]
    assert "1 unfinished job(s) deleted, which no prune deletes" in note, note
    assert f"({Path(first['backup']).name})" in note and "`goldgate dr-restore staging --list`" in note, note
