"""The drill's RPO figure is the age of the newest `*_at` value a backup holds: a DELETE leaves no such value and an
UPDATE by hand moves none, so a drill of a damaged database reported a small RPO, the same row counts and the same
last write as the good backup before it (session 29, the D1 DR drill followed verbatim). Each local drill now
compares its backup with the one before it row by row (primary key and content), prints what each table gained, lost
and had changed, and says in a note when jobs were deleted or changed with none of their `*_at` values moved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops_fixtures import run_sql

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.ops.dr import run_local_drill


def _drill(home: Path, capsys: pytest.CaptureFixture) -> dict:
    assert main(["dr-drill", "staging", "--home", str(home), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def clean_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)


def test_a_bad_update_that_moves_no_timestamp_is_seen_and_named(tmp_path, stack_db, capsys, clean_target):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=20)
    first = _drill(home, capsys)
    # The mistake: three finished jobs marked cancelled by hand; no count, no `*_at` value moves.
    run_sql(db, "UPDATE jobs SET status = 'cancelled' WHERE id IN (SELECT id FROM jobs ORDER BY id LIMIT 3)")
    second = _drill(home, capsys)
    assert second["passed"] and second["row_counts"] == first["row_counts"]
    assert second["last_write_at"] == first["last_write_at"]   # what the RPO figure reads: unchanged
    previous = Path(first["backup"]).name
    assert second["changes_since_previous"]["previous"] == previous
    assert second["changes_since_previous"]["tables"]["jobs"] == {"added": 0, "deleted": 0, "changed": 3,
                                                                   "unstamped": 3}
    [note] = [n for n in second["notes"] if "since the backup before this one" in n]
    assert f"({previous}): 3 job(s) changed with none of their *_at values moved" in note, note
    assert "restore that backup or an earlier one, not this one" in note

    assert main(["dr-drill", "staging", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    # The third drill: nothing changed since the second.
    assert "since previous backup  " in out and "no row added, deleted or changed" in out, out
    assert "it sees no deleted or updated row" in out


def test_deleted_jobs_are_named_though_new_jobs_keep_the_count_up(tmp_path, stack_db, capsys, clean_target):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=20)
    first = _drill(home, capsys)
    # Two jobs deleted by mistake, three created since: the job count grows, so no "fewer jobs" note.
    run_sql(db, "DELETE FROM webhook_deliveries WHERE job_id IN (SELECT id FROM jobs ORDER BY id LIMIT 2)",
         "DELETE FROM job_metrics WHERE job_id IN (SELECT id FROM jobs ORDER BY id LIMIT 2)",
         "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs ORDER BY id LIMIT 2)",
         *(f"INSERT INTO jobs SELECT '{n:032x}', stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
           "runpod_job_id, version, last_delivery, error, results_json, worker_timings_json, worker_image_tag, "
           "gpu_type, runpod_queue_duration_ms, runpod_run_duration_ms, e2e_ms, cost_estimate_usd, "
           "'2026-12-31T00:00:00.000Z', created_at_ms, '2026-12-31T00:00:00.000Z', finished_at, policy_ttl_ms, "
           "run_timeout_ms, client FROM jobs ORDER BY id DESC LIMIT 1" for n in range(3)))
    second = _drill(home, capsys)
    assert second["passed"] and second["row_counts"]["jobs"] == first["row_counts"]["jobs"] + 1
    assert not [n for n in second["notes"] if "jobs were deleted or lost since" in n]  # the count went up
    assert second["changes_since_previous"]["tables"]["jobs"] == {"added": 3, "deleted": 2, "changed": 0,
                                                                   "unstamped": 0}
    [note] = [n for n in second["notes"] if "since the backup before this one" in n]
    assert "2 job(s) deleted" in note and "goldgate prune" in note, note


def test_a_change_the_service_makes_is_counted_but_raises_no_alarm(tmp_path, stack_db, capsys, clean_target):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=10)
    first = run_local_drill("staging", db, home, backup_retention_days=90)
    assert first.passed and first.changes_since_previous is None  # no backup before the first
    # As the service changes a job: its updated_at moves with it.
    run_sql(db, "UPDATE jobs SET error = 'x', updated_at = '2026-12-31T00:00:00.000Z' "
             "WHERE id = (SELECT id FROM jobs ORDER BY id LIMIT 1)")
    second = run_local_drill("staging", db, home, backup_retention_days=90)
    assert second.passed, second.error
    assert second.changes_since_previous["tables"]["jobs"] == {"added": 0, "deleted": 0, "changed": 1, "unstamped": 0}
    assert second.changes_since_previous["tables"]["job_metrics"]["changed"] == 0
    assert not [n for n in second.notes if "since the backup before this one" in n], second.notes
