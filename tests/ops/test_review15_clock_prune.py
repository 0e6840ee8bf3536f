"""`goldgate prune` counts every cutoff back from now. Locally now is this machine's clock (SQLite's 'now' is the
machine's): a clock stepped years ahead used to delete every finished job, every idempotency key and, with
--metrics-keep-days, every metrics row. The rows' times are the evidence of the date: while a row due for deletion is
followed by more than the keep period + 366 days in which no job was created (up to now), the clock is taken for one
stepped ahead and nothing goes, whatever was written since (tests/ops/test_review15_fb_prune_clock_gap.py: a job
run after the step no longer lets the prune through). The clock is injected (`now_s`) except in the command's test,
where the rows are written a decade before the real clock instead."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ops_fixtures import build_stack_db

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.local.platform import LocalPlatform
from goldgate.migrations import apply_sqlite, apply_with
from goldgate.ops import retention

STAGING = specs.load_local("staging")  # result_ttl_days: 7
DAY_S = 86_400
START = "2026-11-01T00:00:00Z"
NEWEST_S = datetime(2026, 11, 1, tzinfo=UTC).timestamp() + 20  # build_stack_db: job i created at START + i s
JOBS = 20


def _counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("jobs", "webhook_deliveries", "job_metrics")}
    finally:
        conn.close()


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_clock_ten_years_ahead_is_refused_and_deletes_nothing(tmp_path, dry_run):
    db = build_stack_db(tmp_path / "db.sqlite", jobs=JOBS, start=START)
    before = _counts(db)
    with pytest.raises(retention.PruneRefused) as refused:
        retention.prune_local(STAGING, db, 30, 30, dry_run=dry_run, now_s=NEWEST_S + 10 * 365 * DAY_S)
    assert _counts(db) == before == {"jobs": JOBS, "webhook_deliveries": JOBS, "job_metrics": JOBS}
    message = str(refused.value)
    assert "this machine's clock reads 2036-" in message and "nothing was deleted" in message
    assert "2026-11-01T00:00:20.000Z" in message  # the last row before the stretch: the evidence


def test_a_clock_an_hour_ahead_prunes_as_usual(tmp_path):
    db = build_stack_db(tmp_path / "db.sqlite", jobs=JOBS, start=START)
    # 30 days and an hour after the jobs: they are past --keep-days 30 by an hour, and go.
    report = retention.prune_local(STAGING, db, 30, now_s=NEWEST_S + 30 * DAY_S + 3_600 + 60)
    assert report.deleted["jobs"] == JOBS and _counts(db)["jobs"] == 0


def test_a_stack_idle_for_a_year_is_pruned_and_one_idle_past_its_keep_days_and_a_year_is_asked_to_vouch(tmp_path):
    db = build_stack_db(tmp_path / "db.sqlite", jobs=JOBS, start=START)
    with pytest.raises(retention.PruneRefused, match="prune with --clock-checked YYYY-MM-DD"):
        retention.prune_local(STAGING, db, 30, now_s=NEWEST_S + (30 + retention.MAX_QUIET_DAYS + 1) * DAY_S)
    report = retention.prune_local(STAGING, db, 30, now_s=NEWEST_S + (30 + retention.MAX_QUIET_DAYS - 1) * DAY_S)
    assert report.deleted["jobs"] == JOBS


def test_a_job_run_after_a_long_quiet_is_refused_too_until_the_clock_is_vouched_for(tmp_path):
    db = build_stack_db(tmp_path / "db.sqlite", jobs=JOBS, start=START)
    now = NEWEST_S + 2 * 365 * DAY_S
    with pytest.raises(retention.PruneRefused):
        retention.prune_local(STAGING, db, 30, now_s=now)
    fresh = datetime.fromtimestamp(now - 60, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                     "created_at, created_at_ms, updated_at) VALUES ('fresh', 'staging', 'sdxl-txt2img', "
                     "'sdxl-txt2img@1.0.0', '{}', 't', 'queued', ?, ?, ?)", (fresh, int((now - 60) * 1000), fresh))
    conn.close()
    # The job's row is as recent as the clock, wrong or not: no evidence that the clock is right.
    with pytest.raises(retention.PruneRefused, match="no job was created in the 729 days after 2026-11-01T00:00:20"):
        retention.prune_local(STAGING, db, 30, now_s=now)
    assert _counts(db)["jobs"] == JOBS + 1
    today = datetime.fromtimestamp(now, UTC).date().isoformat()  # as the operator read it from a clock they trust
    report = retention.prune_local(STAGING, db, 30, now_s=now, clock_checked=today)
    assert report.deleted["jobs"] == JOBS and _counts(db)["jobs"] == 1 and report.clock_checked == today


def test_an_empty_database_is_pruned_whatever_the_clock(tmp_path):
    db = tmp_path / "db.sqlite"
    apply_sqlite(db)
    report = retention.prune_local(STAGING, db, 30, now_s=NEWEST_S + 10 * 365 * DAY_S)
    assert report.deleted["jobs"] == 0


def test_cli_prune_under_a_clock_a_decade_past_the_rows_fails_with_one_line(tmp_path, capsys):
    home = tmp_path / "home"
    decade_ago = (datetime.now(UTC) - timedelta(days=3_650)).strftime("%Y-%m-%dT%H:%M:%SZ")
    db = build_stack_db(LocalPlatform(home).db_path("staging"), jobs=JOBS, start=decade_ago)
    assert main(["prune", "staging", "--home", str(home), "--keep-days", "30"]) == 1
    [reason] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("goldgate:")]
    assert "this machine's clock reads" in reason and "nothing was deleted" in reason
    assert _counts(db)["jobs"] == JOBS
    assert not (home / "prunes").exists()  # no record for the checklist: nothing was pruned


def test_a_cloud_prune_under_a_clock_a_decade_ahead_is_refused_too(tmp_path):
    token = "cf-clock-token-0123456789abcdef"
    with D1StandIn(token) as standin:
        api = CloudflareApi(token, standin.api_base)
        try:
            d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
            database = d1.create_database("goldgate-staging").uuid
            apply_with(lambda sql, params: d1.query(database, sql, params))
            d1.query(database, "INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, "
                               "status, created_at, created_at_ms, updated_at, finished_at) VALUES ('old', 'staging', "
                               "'sdxl-txt2img', 'sdxl-txt2img@1.0.0', '{}', 't', 'completed', ?, 0, ?, ?)",
                     [START, START, START])
            with pytest.raises(retention.PruneRefused, match=f"the clock of D1 {database} reads 2036-"):
                retention.prune_cloud(STAGING, d1, database, 30, now_s=NEWEST_S + 10 * 365 * DAY_S)
            assert d1.query(database, "SELECT id FROM jobs") == [{"id": "old"}]
        finally:
            api.close()
