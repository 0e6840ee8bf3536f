"""The API Worker's Cron Trigger: `Default.scheduled` prunes D1 (through the entry's D1 stand-in) exactly as
`goldgate prune` prunes the same database, a bounded part per run, and logs one schema-v1 line about it."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from test_service_cloudflare_entry import Ctx, JsException, _entry, make_env

from goldgate import spec as specs
from goldgate.ops.retention import prune_local
from service.jobs import iso_ms

DAY = 86_400
NOW = 1_795_000_000.0
CRON = "30 3 * * *"
STAGING = specs.load_local("staging")  # result_ttl_days: 7
TABLES = {"jobs": "id", "webhook_deliveries": "fingerprint", "idempotency_keys": "idempotency_key",
          "job_metrics": "job_id"}

_JOB = ("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, created_at, "
        "created_at_ms, updated_at, finished_at) VALUES (?, 'staging', 'sdxl-txt2img', 'sdxl-txt2img@1.0.0', "
        "'{\"prompt\": \"p\"}', ?, ?, ?, ?, ?, ?)")
_DELIVERY = ("INSERT INTO webhook_deliveries (fingerprint, job_id, runpod_status, source, applied, outcome, "
             "received_at) VALUES (?, ?, 'COMPLETED', 'webhook', 1, 'applied', ?)")
_METRIC = "INSERT INTO job_metrics (job_id, stack, status, e2e_ms, created_at) VALUES (?, 'staging', ?, 1000, ?)"
_KEY = ("INSERT INTO idempotency_keys (scope, idempotency_key, request_sha256, job_id, created_at, created_at_ms) "
        "VALUES ('staging', ?, 'x', ?, ?, ?)")

# (id, status, created days ago, finished days ago)
JOBS = [("old-completed", "completed", 400, 400), ("old-failed", "failed", 40, 40),
        ("old-queued", "queued", 40, None), ("old-but-finished-late", "completed", 40, 3),
        ("recent-completed", "completed", 2, 2), ("recent-queued", "queued", 0, None)]


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _entry(monkeypatch, with_jsnull=True)


def _fill(conn: sqlite3.Connection, jobs: Sequence[tuple[str, str, int, int | None]] = JOBS, keys: bool = True
          ) -> None:
    for job_id, status, created, finished in jobs:
        created_s = NOW - created * DAY
        updated = iso_ms(NOW - (created if finished is None else finished) * DAY)
        conn.execute(_JOB, (job_id, job_id, status, iso_ms(created_s), int(created_s * 1000), updated,
                            None if finished is None else updated))
        if finished is not None:
            conn.execute(_DELIVERY, (f"{job_id}-hook", job_id, updated))
            conn.execute(_METRIC, (job_id, status, iso_ms(created_s)))
    for key, age_s in (("key-old", 2 * DAY), ("key-fresh", 3_600)) if keys else ():
        conn.execute(_KEY, (key, "recent-completed", iso_ms(NOW - age_s), int((NOW - age_s) * 1000)))


def _state(conn: sqlite3.Connection) -> dict[str, set[str]]:
    return {table: {row[0] for row in conn.execute(f"SELECT {key} FROM {table}")} for table, key in TABLES.items()}


def _controller() -> Any:
    return types.SimpleNamespace(cron=CRON, scheduledTime=NOW * 1000, type="scheduled")


def _lines(capsys: pytest.CaptureFixture[str], log_lines: list[str]) -> list[dict[str, Any]]:
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    log_lines.extend(lines)  # schema-checked and scanned for secrets at teardown
    return [json.loads(line) for line in lines]


def _worker(entry: Any, tmp_path: Path, **bindings: str) -> tuple[Any, Any]:
    env = make_env(tmp_path, "http://127.0.0.1:9/v2/ep", **bindings)
    _fill(env.DB.conn)
    return entry.Default(Ctx(), env), env


def _what_goldgate_prune_leaves(env: Any, tmp_path: Path, keep_days: int, metrics_keep_days: int | None
                                ) -> dict[str, set[str]]:
    copy = tmp_path / "copy.sqlite"
    shutil.copyfile(tmp_path / "d1.sqlite", copy)
    prune_local(STAGING, copy, keep_days, metrics_keep_days, now_s=NOW)
    conn = sqlite3.connect(copy)
    try:
        return _state(conn)
    finally:
        conn.close()


@pytest.mark.parametrize("metrics_keep_days", [None, 365])
def test_a_scheduled_run_deletes_exactly_what_goldgate_prune_deletes_and_logs_the_counts(
        entry, tmp_path, capsys, log_lines, metrics_keep_days):
    bindings = {"RETENTION_KEEP_DAYS": "30"}
    if metrics_keep_days is not None:
        bindings["RETENTION_METRICS_KEEP_DAYS"] = str(metrics_keep_days)
    worker, env = _worker(entry, tmp_path, **bindings)
    expected = _what_goldgate_prune_leaves(env, tmp_path, 30, metrics_keep_days)

    asyncio.run(worker.scheduled(_controller(), env, Ctx()))

    assert _state(env.DB.conn) == expected
    assert "old-completed" not in expected["jobs"] and {"old-queued", "old-but-finished-late"} <= expected["jobs"]
    assert ("old-completed" in expected["job_metrics"]) is (metrics_keep_days is None)
    [line] = _lines(capsys, log_lines)
    assert (line["event"], line["level"], line["status"], line["stack"]) == ("retention.pruned", "info", "complete",
                                                                             "staging")
    data = line["data"]
    assert data["deleted"] == {"jobs": 2, "webhook_deliveries": 2, "idempotency_keys": 1,
                               "job_metrics": 0 if metrics_keep_days is None else 1}
    assert data["remaining"] == {table: len(rows) for table, rows in expected.items()}
    assert (data["cron"], data["keep_days"], data["metrics_keep_days"]) == (CRON, 30, metrics_keep_days)
    assert data["jobs_before"] == iso_ms(NOW - 30 * DAY) and data["unfinished_kept"] == 1
    assert "POST /api/admin/recover/JOB" in line["message"]  # the stuck old-queued job: the cloud way


def test_without_retention_bindings_a_scheduled_run_deletes_nothing_and_says_so(entry, tmp_path, capsys, log_lines):
    worker, env = _worker(entry, tmp_path)
    before = _state(env.DB.conn)

    asyncio.run(worker.scheduled(_controller(), env, Ctx()))

    assert _state(env.DB.conn) == before and env.DB.calls == []
    [line] = _lines(capsys, log_lines)
    assert (line["event"], line["reason"]) == ("retention.skipped", "not_configured")
    assert "database.retention" in line["message"]


def test_a_scheduled_run_stops_at_its_statement_budget_and_the_next_runs_finish_the_prune(
        entry, tmp_path, capsys, log_lines, monkeypatch):
    monkeypatch.setattr(entry, "RETENTION_STATEMENTS", 6)
    many = [(f"old-{n:03d}", "completed", 60, 60) for n in range(250)]  # three of retention's 100-job windows
    worker, env = _worker(entry, tmp_path, RETENTION_KEEP_DAYS="30")
    _fill(env.DB.conn, many, keys=False)
    expected = _what_goldgate_prune_leaves(env, tmp_path, 30, None)

    runs = []
    while len(runs) < 20:
        calls = len(env.DB.calls)
        asyncio.run(worker.scheduled(_controller(), env, Ctx()))
        assert len(env.DB.calls) - calls <= 6  # never more D1 statements than the budget
        [line] = _lines(capsys, log_lines)
        runs.append(line)
        if line["status"] == "complete":
            break

    assert _state(env.DB.conn) == expected
    assert [line["status"] for line in runs[:-1]] == ["partial"] * (len(runs) - 1) and len(runs) > 2
    assert "the next run carries on" in runs[0]["message"] and runs[0]["data"]["deleted"]["jobs"] > 0
    assert sum(line["data"]["deleted"]["jobs"] for line in runs) == 252  # each job counted once, in its run
    assert sum(line["data"]["deleted"]["webhook_deliveries"] for line in runs) == 252


def test_a_d1_failure_is_logged_on_the_schema_and_raised_so_the_cron_run_shows_failed(
        entry, tmp_path, capsys, log_lines):
    worker, env = _worker(entry, tmp_path, RETENTION_KEEP_DAYS="30")
    env.DB.conn.execute("DROP TABLE job_metrics")  # the expired key goes, then a statement fails

    with pytest.raises(JsException, match="no such table"):
        asyncio.run(worker.scheduled(_controller(), env, Ctx()))

    [line] = _lines(capsys, log_lines)
    assert (line["event"], line["level"], line["reason"]) == ("retention.failed", "error", "prune_failed")
    assert "no such table: job_metrics" in line["error"]["message"]
    # what it deleted before failing is reported, and stays deleted
    assert line["data"]["deleted"]["idempotency_keys"] == 1
    assert env.DB.conn.execute("SELECT idempotency_key FROM idempotency_keys").fetchall() == [("key-fresh",)]


@pytest.mark.parametrize(("bindings", "said"), [
    ({"RETENTION_METRICS_KEEP_DAYS": "365"}, "needs retention_keep_days"),
    ({"RETENTION_KEEP_DAYS": "30", "RETENTION_METRICS_KEEP_DAYS": "7"}, "retention_keep_days (30) to 3650"),
    ({"RETENTION_KEEP_DAYS": "0"}, "retention_keep_days must be 1..3650 days, got 0"),
    ({"RETENTION_KEEP_DAYS": "thirty"}, "RETENTION_KEEP_DAYS must be a number"),
])
def test_retention_bindings_that_would_delete_what_must_be_kept_are_refused_deleting_nothing(
        entry, tmp_path, capsys, log_lines, bindings, said):
    worker, env = _worker(entry, tmp_path, **bindings)
    before = _state(env.DB.conn)

    with pytest.raises(entry.ConfigError, match=said.replace("(", r"\(").replace(")", r"\)")):
        asyncio.run(worker.scheduled(_controller(), env, Ctx()))

    assert _state(env.DB.conn) == before
    [line] = _lines(capsys, log_lines)
    assert (line["event"], line["reason"]) == ("service.misconfigured", "misconfigured") and said in line["message"]


def test_old_jobs_more_than_a_run_can_get_through_do_not_keep_expired_keys_and_old_metrics_forever(
        entry, tmp_path, capsys, log_lines, monkeypatch):
    """A backlog of old jobs larger than a run's budget (a first prune of a busy database, more jobs a day than a
    daily run gets through, thousands of stuck jobs) makes every run partial; the small tables still get pruned."""
    monkeypatch.setattr(entry, "RETENTION_STATEMENTS", 6)
    stuck = [(f"stuck-{n:03d}", "queued", 60, None) for n in range(250)]  # more than a 6-statement run gets past
    worker, env = _worker(entry, tmp_path, RETENTION_KEEP_DAYS="30", RETENTION_METRICS_KEEP_DAYS="365")
    _fill(env.DB.conn, stuck, keys=False)

    for _ in range(3):
        asyncio.run(worker.scheduled(_controller(), env, Ctx()))

    assert [line["status"] for line in _lines(capsys, log_lines)] == ["partial"] * 3
    state = _state(env.DB.conn)
    assert state["idempotency_keys"] == {"key-fresh"}  # the one past its 24 h window went
    assert "old-completed" not in state["job_metrics"]  # 400 days old, past the 365 kept


STUCK = 13_000  # more old jobs than one run's 500 statements walk (about 8,000)


def _stuck_then_finished(conn: sqlite3.Connection, stuck: int, finished: int) -> None:
    """`stuck` jobs queued 60 days ago and never finished, then `finished` jobs completed 50 days ago (the
    oldest first in the created_at index: the stuck ones stand between every run and the finished ones)."""
    def job(job_id: str, status: str, created_s: float, finished_s: float | None) -> tuple[Any, ...]:
        created, done = iso_ms(created_s), None if finished_s is None else iso_ms(finished_s)
        return job_id, job_id, status, created, int(created_s * 1000), done or created, done

    old, later = NOW - 60 * DAY, NOW - 50 * DAY
    conn.execute("BEGIN")
    conn.executemany(_JOB, [job(f"stuck-{n:05d}", "queued", old + n / 1000, None) for n in range(stuck)])
    conn.executemany(_JOB, [job(f"finished-{n:03d}", "completed", later + n / 1000, later) for n in range(finished)])
    conn.executemany(_DELIVERY, [(f"finished-{n:03d}-hook", f"finished-{n:03d}", iso_ms(later))
                                 for n in range(finished)])
    conn.execute("COMMIT")


def _scheduled_runs(worker: Any, env: Any, entry: Any, runs: int, now_s: float = NOW) -> None:
    controller = types.SimpleNamespace(cron=CRON, scheduledTime=now_s * 1000, type="scheduled")
    for _ in range(runs):
        calls = len(env.DB.calls)
        asyncio.run(worker.scheduled(controller, env, Ctx()))
        assert len(env.DB.calls) - calls <= entry.RETENTION_STATEMENTS  # never more D1 statements than the budget


def test_thousands_of_stuck_old_jobs_do_not_keep_every_scheduled_run_from_the_finished_jobs_after_them(
        entry, tmp_path, capsys, log_lines):
    worker, env = _worker(entry, tmp_path, RETENTION_KEEP_DAYS="30")
    _stuck_then_finished(env.DB.conn, STUCK, 250)

    _scheduled_runs(worker, env, entry, 3)  # a run carries on where the one before it stopped

    jobs = _state(env.DB.conn)["jobs"]
    assert not {job for job in jobs if job.startswith("finished-")}
    assert not {hook for hook in _state(env.DB.conn)["webhook_deliveries"] if hook.startswith("finished-")}
    assert len({job for job in jobs if job.startswith("stuck-")}) == STUCK  # kept for `recover`
    assert [line["event"] for line in _lines(capsys, log_lines)] == ["retention.pruned"] * 3  # one a run
    # `goldgate prune` of the same database has nothing left to delete and names every stuck job
    copy = tmp_path / "copy.sqlite"
    shutil.copyfile(tmp_path / "d1.sqlite", copy)
    report = prune_local(STAGING, copy, 30, now_s=NOW)
    assert report.deleted["jobs"] == 0 and report.unfinished_kept == STUCK + 1  # and JOBS' old-queued


def test_an_old_job_recovered_after_the_scheduled_runs_passed_it_is_pruned_by_a_later_run(
        entry, tmp_path, capsys, log_lines):
    worker, env = _worker(entry, tmp_path, RETENTION_KEEP_DAYS="30")
    _stuck_then_finished(env.DB.conn, STUCK, 10)
    _scheduled_runs(worker, env, entry, 2)
    # an operator recovers one stuck job today: it finished now, so it goes once it is 30 days past that
    env.DB.conn.execute("UPDATE jobs SET status = 'failed', updated_at = ?1, finished_at = ?1 WHERE id = ?2",
                        (iso_ms(NOW), "stuck-03000"))

    _scheduled_runs(worker, env, entry, 3, now_s=NOW + 31 * DAY)

    jobs = _state(env.DB.conn)["jobs"]
    assert "stuck-03000" not in jobs and len({job for job in jobs if job.startswith("stuck-")}) == STUCK - 1
    _lines(capsys, log_lines)


@pytest.mark.parametrize("resume_at", ["", iso_ms(NOW - 60 * DAY + 5), iso_ms(NOW - 45 * DAY), iso_ms(NOW)])
def test_a_scheduled_run_that_gets_round_deletes_what_goldgate_prune_deletes_wherever_the_last_run_stopped(
        entry, tmp_path, capsys, log_lines, monkeypatch, resume_at):
    """Any stored position is safe: a run walks the old jobs from it to the cutoff and round to it again, so an
    overlapping run or `goldgate prune` moving things on loses nothing."""
    monkeypatch.setattr(entry, "RETENTION_STATEMENTS", 1_000)
    worker, env = _worker(entry, tmp_path, RETENTION_KEEP_DAYS="30")
    _stuck_then_finished(env.DB.conn, 1_050, 120)
    env.DB.conn.execute("INSERT INTO retention_cursor (walk, reached) VALUES ('jobs', ?)", (resume_at,))
    expected = _what_goldgate_prune_leaves(env, tmp_path, 30, None)

    _scheduled_runs(worker, env, entry, 1)

    assert _state(env.DB.conn) == expected
    [line] = _lines(capsys, log_lines)
    assert line["status"] == "complete" and line["data"]["unfinished_kept"] == 1_051
    assert line["data"]["deleted"]["jobs"] == 122  # the 120 finished, old-completed and old-failed
