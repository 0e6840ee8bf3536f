"""`goldgate prune` under a clock stepped ahead, once a job has run since the step. The stack keeps running under
the wrong clock, so the next job's created_at is written by it: the newest row is recent again, and a guard that
weighed only the newest row let the prune delete every finished job (and, with --metrics-keep-days, every metrics
row) from before the step. The rule is now the DR drill's (goldgate.ops.backup.clock_jump): nothing goes while a row
due for deletion is followed by a stretch of more than its keep period + 366 days in which no job was created. An
operator whose clock is right after all (a stack really idle that long) vouches for it with --clock-checked DATE,
which the prune record keeps; the next prunes need no flag. The guard hops along the created_at indexes: its cost
does not grow with the rows (counted in SQLite VM instructions, not timed)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ops_fixtures import build_stack_db
from test_review15_clock_prune import _counts

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.local.platform import LocalPlatform
from goldgate.migrations import apply_with
from goldgate.ops import retention

STAGING = specs.load_local("staging")  # result_ttl_days: 7
DAY_S = 86_400
START = "2026-11-01T00:00:00Z"
NEWEST = "2026-11-01T00:00:20.000Z"  # build_stack_db: job i created at START + i s
NEWEST_S = datetime(2026, 11, 1, tzinfo=UTC).timestamp() + 20
JOBS = 20
DECADE_S = 10 * 365 * DAY_S

_JOB = ("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, created_at, "
        "created_at_ms, updated_at, finished_at) VALUES (?, 'staging', 'sdxl-txt2img', 'sdxl-txt2img@1.0.0', '{}', "
        "'t', ?, ?, 0, ?, ?)")
_METRIC = "INSERT INTO job_metrics (job_id, stack, status, created_at) VALUES (?, 'staging', 'completed', ?)"


def _stamp(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _run_job(db: Path, job_id: str, at_s: float, status: str = "completed") -> None:
    """A job the stack ran at `at_s` by its clock: its row and, once finished, its metrics row."""
    at = _stamp(at_s)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(_JOB, (job_id, status, at, at, at if status == "completed" else None))
        if status == "completed":
            conn.execute(_METRIC, (job_id, at))
    conn.close()


# -- the weakness: one job after the step ---------------------------------------------------------

@pytest.mark.parametrize("dry_run", [False, True])
def test_one_job_run_after_a_clock_step_does_not_let_the_next_prune_delete_the_jobs_before_it(tmp_path, dry_run):
    db = build_stack_db(tmp_path / "db.sqlite", jobs=JOBS, start=START)
    now = NEWEST_S + DECADE_S  # the clock stepped ten years ahead, and the stack ran on
    _run_job(db, "after-the-step", now - 3_600)
    before = _counts(db)
    with pytest.raises(retention.PruneRefused) as refused:
        retention.prune_local(STAGING, db, 30, 30, dry_run=dry_run, now_s=now)
    assert _counts(db) == before == {"jobs": JOBS + 1, "webhook_deliveries": JOBS, "job_metrics": JOBS + 1}
    message = str(refused.value)
    assert "this machine's clock reads 2036-" in message and "nothing was deleted" in message
    assert f"after {NEWEST}" in message  # the last row before the stretch: the evidence of the real date
    assert "Set the clock right" in message and "--clock-checked YYYY-MM-DD" in message


def test_a_day_of_jobs_under_the_wrong_clock_does_not_either(tmp_path):
    db = build_stack_db(tmp_path / "db.sqlite", jobs=JOBS, start=START)
    now = NEWEST_S + DECADE_S
    for hour in range(24):  # a day's traffic: the stretch stays a stretch behind it
        _run_job(db, f"after-{hour}", now - (24 - hour) * 3_600)
    with pytest.raises(retention.PruneRefused, match=f"after {NEWEST} "):
        retention.prune_local(STAGING, db, 30, now_s=now)
    assert _counts(db)["jobs"] == JOBS + 24


def test_metrics_kept_after_their_jobs_went_are_guarded_too(tmp_path):
    """Jobs pruned long ago, their metrics kept: a step ahead, one job since, and --metrics-keep-days would take
    every metrics row from before the step. Without it nothing before the step is due, and the prune goes ahead."""
    db = build_stack_db(tmp_path / "db.sqlite", jobs=JOBS, start=START)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM webhook_deliveries")
        conn.execute("DELETE FROM jobs")
    conn.close()
    now = NEWEST_S + DECADE_S
    _run_job(db, "after-the-step", now - 3_600)
    with pytest.raises(retention.PruneRefused, match="holds job_metrics rows from before then") as refused:
        retention.prune_local(STAGING, db, 30, 30, now_s=now)
    assert "--metrics-keep-days 30 + 366" in str(refused.value)
    assert _counts(db)["job_metrics"] == JOBS + 1
    report = retention.prune_local(STAGING, db, 30, now_s=now)  # metrics kept: nothing from before the step goes
    assert report.deleted == {"jobs": 0, "webhook_deliveries": 0, "idempotency_keys": 0, "job_metrics": 0}


def test_cli_prune_after_a_job_under_a_clock_a_decade_past_the_rows_fails_with_one_line(tmp_path, capsys):
    home = tmp_path / "home"
    decade_ago = (datetime.now(UTC) - timedelta(days=3_650)).strftime("%Y-%m-%dT%H:%M:%SZ")
    db = build_stack_db(LocalPlatform(home).db_path("staging"), jobs=JOBS, start=decade_ago)
    _run_job(db, "just-now", datetime.now(UTC).timestamp() - 60)
    assert main(["prune", "staging", "--home", str(home), "--keep-days", "30", "--metrics-keep-days", "30"]) == 1
    [reason] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("goldgate:")]
    assert "this machine's clock reads" in reason and "nothing was deleted" in reason
    assert _counts(db) == {"jobs": JOBS + 1, "webhook_deliveries": JOBS, "job_metrics": JOBS + 1}
    assert not (home / "prunes").exists()  # no record for the checklist: nothing was pruned


def test_a_cloud_prune_after_a_job_under_a_clock_a_decade_ahead_is_refused_too(tmp_path):
    token = "cf-clock-gap-token-0123456789abcdef"
    now = NEWEST_S + DECADE_S
    with D1StandIn(token) as standin:
        api = CloudflareApi(token, standin.api_base)
        try:
            d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
            database = d1.create_database("goldgate-staging").uuid
            apply_with(lambda sql, params: d1.query(database, sql, params))
            for job_id, at in (("old", START), ("new", _stamp(now - 3_600))):
                d1.query(database, _JOB, [job_id, "completed", at, at, at])
            with pytest.raises(retention.PruneRefused, match=f"the clock of D1 {database} reads 2036-.* after {START}"):
                retention.prune_cloud(STAGING, d1, database, 30, now_s=now)
            assert d1.query(database, "SELECT id FROM jobs ORDER BY id") == [{"id": "new"}, {"id": "old"}]
        finally:
            api.close()


# -- the rule's edges -----------------------------------------------------------------------------

def test_the_stretch_allowed_is_the_keep_period_and_a_year(tmp_path):
    db = build_stack_db(tmp_path / "db.sqlite", jobs=JOBS, start=START)
    quiet = (90 + retention.MAX_QUIET_DAYS) * DAY_S
    _run_job(db, "after-a-long-quiet", NEWEST_S + quiet - DAY_S)  # under --keep-days 90 + 366 since the last
    report = retention.prune_local(STAGING, db, 90, now_s=NEWEST_S + quiet)
    assert report.deleted["jobs"] == JOBS
    db = build_stack_db(tmp_path / "db2.sqlite", jobs=JOBS, start=START)
    _run_job(db, "after-a-longer-quiet", NEWEST_S + quiet + DAY_S)
    with pytest.raises(retention.PruneRefused, match=r"in the 45\d days after .*--keep-days 90 \+ 366"):
        retention.prune_local(STAGING, db, 90, now_s=NEWEST_S + quiet + 2 * DAY_S)


def test_rows_stamped_past_now_are_no_evidence_and_a_clock_set_back_prunes_as_usual(tmp_path):
    """Jobs written while the clock read 2036, before it was set right, neither close the stretch nor go."""
    db = build_stack_db(tmp_path / "db.sqlite", jobs=JOBS, start=START)
    _run_job(db, "while-ahead", NEWEST_S + DECADE_S)
    report = retention.prune_local(STAGING, db, 30, now_s=NEWEST_S + 31 * DAY_S)
    assert report.deleted["jobs"] == JOBS and _counts(db)["jobs"] == 1


# -- the way forward: --clock-checked -------------------------------------------------------------

def test_a_stack_really_idle_for_two_years_is_pruned_once_vouched_for_and_then_needs_no_flag(tmp_path, capsys):
    home = tmp_path / "home"
    now = datetime.now(UTC)
    db = build_stack_db(LocalPlatform(home).db_path("staging"), jobs=JOBS,
                        start=(now - timedelta(days=730)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    _run_job(db, "stuck-before", (now - timedelta(days=729)).timestamp(), status="queued")  # never finished
    _run_job(db, "back-in-use", now.timestamp() - 60)
    argv = ["prune", "staging", "--home", str(home), "--keep-days", "30"]
    assert main(argv) == 1
    assert "--clock-checked YYYY-MM-DD" in capsys.readouterr().err

    assert main([*argv, "--clock-checked", now.date().isoformat()]) == 0
    out = capsys.readouterr().out
    assert f"clock: vouched for with --clock-checked {now.date().isoformat()}" in out
    assert _counts(db)["jobs"] == 2  # the stuck job (for `recover`) and the new one
    recorded = json.loads((home / "prunes" / "staging" / "latest-local.json").read_text())
    assert recorded["clock_checked"] == now.date().isoformat() and recorded["deleted"]["jobs"] == JOBS

    # The stretch is still there, but nothing due for deletion is before it: the next prunes go ahead unvouched.
    assert main(argv) == 0
    assert json.loads((home / "prunes" / "staging" / "latest-local.json").read_text())["clock_checked"] is None


def test_clock_checked_with_the_date_of_a_clock_that_is_wrong_is_refused(tmp_path):
    db = build_stack_db(tmp_path / "db.sqlite", jobs=JOBS, start=START)
    now = NEWEST_S + DECADE_S
    _run_job(db, "after-the-step", now - 3_600)
    real_date = datetime.fromtimestamp(NEWEST_S + DAY_S, UTC).date().isoformat()  # what a trusted clock reads
    with pytest.raises(retention.PruneRefused, match=f"--clock-checked {real_date} is not the date this machine's "
                                                     "clock reads \\(2036-.*the clock is wrong; nothing was deleted"):
        retention.prune_local(STAGING, db, 30, 30, now_s=now, clock_checked=real_date)
    assert _counts(db)["jobs"] == JOBS + 1
    stale = datetime.fromtimestamp(now - 2 * DAY_S, UTC).date().isoformat()  # left in a script two days ago
    with pytest.raises(retention.PruneRefused, match="is not the date"):
        retention.prune_local(STAGING, db, 30, 30, now_s=now, clock_checked=stale)
    yesterday = datetime.fromtimestamp(now - DAY_S, UTC).date().isoformat()  # a date read in local time
    assert retention.prune_local(STAGING, db, 30, 30, now_s=now, clock_checked=yesterday).deleted["jobs"] == JOBS


@pytest.mark.parametrize("value", ["30/11/2026", "2026-13-01", "20261130", "today", ""])
def test_clock_checked_takes_a_date_only(tmp_path, capsys, value):
    try:
        code = main(["prune", "staging", "--home", str(tmp_path / "home"), "--keep-days", "30",
                     "--clock-checked", value])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    assert code == 2
    assert "argument --clock-checked" in capsys.readouterr().err and not (tmp_path / "home").exists()


# -- its cost -------------------------------------------------------------------------------------

def _guard_vm_instructions(db: Path, now_s: float) -> int:
    """The SQLite VM instructions (in hundreds) the clock guard takes on `db`; it must let the prune go ahead."""
    conn = retention.open_stack_db(db)
    ticks = [0]

    def tick() -> int:
        ticks[0] += 1
        return 0

    conn.set_progress_handler(tick, 100)
    try:
        asyncio.run(retention._refuse_a_clock_far_ahead(retention._SqliteSql(conn), now_s, 30, 30, "local", "db"))
    finally:
        conn.close()
    return ticks[0]


def test_the_guard_costs_the_same_over_fifty_times_the_rows(tmp_path):
    """Three years of jobs either way. A LAG window over both tables, which reads every row, cost 43 times as
    much on the larger database (1,065 and 46,145 hundred instructions); the hops cost 500 instructions on each."""
    few = build_stack_db(tmp_path / "few.sqlite", jobs=1_000, start=START)
    many = build_stack_db(tmp_path / "many.sqlite", jobs=50_000, start=START)
    for db in (few, many):  # jobs a week apart for three years after them
        for week in range(1, 157):
            _run_job(db, f"week-{week}", NEWEST_S + week * 7 * DAY_S)
    now = NEWEST_S + 157 * 7 * DAY_S
    cost_few, cost_many = _guard_vm_instructions(few, now), _guard_vm_instructions(many, now)
    assert cost_many < 2 * cost_few + 10, (cost_few, cost_many)
