"""`goldgate prune`: D1 retention on a real migrated stack database (SQLite) and on D1 through its stand-in."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ops_fixtures import migrated_d1

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.errors import StateError
from goldgate.local.platform import LocalPlatform
from goldgate.migrations import MIGRATIONS_DIR, apply_sqlite, apply_with
from goldgate.ops import retention
from service import retention as service_retention
from service.jobs import iso_ms

DAY = 86_400
NOW = 1_795_000_000.0  # 2026-11-18
TOKEN = "cf-prune-token-abcdef0123456789"
STAGING = specs.load_local("staging")  # result_ttl_days: 7
PROD = specs.load_local("prod")  # result_ttl_days: 30

_JOB = ("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, created_at, "
        "created_at_ms, updated_at, finished_at) "
        "VALUES (?, ?, 'sdxl-txt2img', 'sdxl-txt2img@1.0.0', ?, ?, ?, ?, ?, ?, ?)")
_DELIVERY = ("INSERT INTO webhook_deliveries (fingerprint, job_id, runpod_status, source, applied, outcome, "
             "received_at) VALUES (?, ?, 'COMPLETED', 'webhook', 1, 'applied', ?)")
_METRIC = "INSERT INTO job_metrics (job_id, stack, status, e2e_ms, created_at) VALUES (?, ?, ?, 1000, ?)"
_KEY = ("INSERT INTO idempotency_keys (scope, idempotency_key, request_sha256, job_id, created_at, created_at_ms) "
        "VALUES ('staging', ?, 'x', ?, ?, ?)")

# (id, status, created days ago, finished days ago): what each row is there to show.
JOBS = [
    ("old-completed", "completed", 40, 40),
    ("old-failed", "failed", 40, 40),
    ("old-cancelled", "cancelled", 35, 35),
    ("old-timed-out", "timed_out", 31, 31),
    ("old-queued", "queued", 40, None),           # stuck: for `recover`, never pruned
    ("old-in-progress", "in_progress", 40, None),  # stuck too
    ("old-but-finished-late", "completed", 40, 3),  # its results were uploaded 3 days ago
    ("recent-completed", "completed", 2, 2),
    ("recent-queued", "queued", 0, None),
]
GONE = {"old-completed", "old-failed", "old-cancelled", "old-timed-out"}


def _rows(now: float, stack: str = "staging") -> list[tuple[str, Sequence[Any]]]:
    """The statements that fill a migrated database with JOBS, two deliveries and a metric per terminal job,
    and idempotency keys two days and one hour old."""
    out: list[tuple[str, Sequence[Any]]] = []
    for job_id, status, created, finished in JOBS:
        created_s = now - created * DAY
        updated = iso_ms(now - finished * DAY) if finished is not None else iso_ms(created_s)
        out.append((_JOB, (job_id, stack, json.dumps({"prompt": "x" * 2000}), job_id, status, iso_ms(created_s),
                           int(created_s * 1000), updated, None if finished is None else updated)))
        if finished is not None:
            for n in (1, 2):
                out.append((_DELIVERY, (f"{job_id}-{n}", job_id, updated)))
            out.append((_METRIC, (job_id, stack, status, iso_ms(created_s))))
    for key, age_s in (("key-old", 2 * DAY), ("key-fresh", 3_600)):
        out.append((_KEY, (key, "recent-completed", iso_ms(now - age_s), int((now - age_s) * 1000))))
    return out


def _stack_db(path: Path, now: float = NOW, stack: str = "staging") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    apply_sqlite(path)
    with sqlite3.connect(path) as conn:
        for sql, params in _rows(now, stack):
            conn.execute(sql, params)
    conn.close()
    return path


def _ids(path: Path, sql: str) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute(sql)}
    finally:
        conn.close()


def _state(path: Path) -> dict[str, set[str]]:
    return {"jobs": _ids(path, "SELECT id FROM jobs"),
            "webhook_deliveries": _ids(path, "SELECT fingerprint FROM webhook_deliveries"),
            "idempotency_keys": _ids(path, "SELECT idempotency_key FROM idempotency_keys"),
            "job_metrics": _ids(path, "SELECT job_id FROM job_metrics")}


ALL_JOBS = {job[0] for job in JOBS}
TERMINAL_JOBS = {job[0] for job in JOBS if job[3] is not None}


def test_prune_deletes_old_terminal_jobs_with_their_deliveries_and_expired_keys_and_nothing_else(tmp_path):
    db = _stack_db(tmp_path / "stack.sqlite")
    report = retention.prune_local(STAGING, db, 30, now_s=NOW)
    state = _state(db)
    assert state["jobs"] == ALL_JOBS - GONE
    assert state["webhook_deliveries"] == {f"{j}-{n}" for j in TERMINAL_JOBS - GONE for n in (1, 2)}
    assert state["idempotency_keys"] == {"key-fresh"}
    assert state["job_metrics"] == TERMINAL_JOBS  # metrics carry the P95 trend: kept without --metrics-keep-days
    assert report.deleted == {"jobs": 4, "webhook_deliveries": 8, "idempotency_keys": 1, "job_metrics": 0}
    assert report.remaining == {"jobs": 5, "webhook_deliveries": 4, "idempotency_keys": 1, "job_metrics": 6}
    assert report.unfinished_kept == 2
    assert not _ids(db, "SELECT 'x' FROM pragma_foreign_key_check")


def test_a_second_prune_deletes_nothing_more(tmp_path):
    db = _stack_db(tmp_path / "stack.sqlite")
    retention.prune_local(STAGING, db, 30, 60, now_s=NOW)
    before = _state(db)
    again = retention.prune_local(STAGING, db, 30, 60, now_s=NOW)
    assert set(again.deleted.values()) == {0}
    assert _state(db) == before


def test_a_dry_run_deletes_nothing_and_counts_what_the_prune_then_deletes(tmp_path):
    db = _stack_db(tmp_path / "stack.sqlite")
    before = _state(db)
    dry = retention.prune_local(STAGING, db, 30, 36, dry_run=True, now_s=NOW)
    assert _state(db) == before
    real = retention.prune_local(STAGING, db, 30, 36, now_s=NOW)
    assert dry.deleted == real.deleted == {"jobs": 4, "webhook_deliveries": 8, "idempotency_keys": 1,
                                           "job_metrics": 3}
    assert dry.remaining == real.remaining and dry.unfinished_kept == real.unfinished_kept == 2


def test_metrics_go_only_when_older_than_metrics_keep_days(tmp_path):
    db = _stack_db(tmp_path / "stack.sqlite")
    report = retention.prune_local(STAGING, db, 30, 38, now_s=NOW)
    # created 40 days ago go; 35 and 31 days ago (their jobs are gone) stay for the trend
    assert _state(db)["job_metrics"] == TERMINAL_JOBS - {"old-completed", "old-failed", "old-but-finished-late"}
    assert report.deleted["job_metrics"] == 3


def _fill_many(path: Path, old: int, keys: int) -> None:
    """`old` jobs 40 days old, every tenth still queued, each finished one with a delivery; `keys` expired keys."""
    apply_sqlite(path)
    with sqlite3.connect(path) as conn:
        conn.execute("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
            INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, created_at,
                              created_at_ms, updated_at, finished_at)
            SELECT printf('job-%05d', i), 'staging', 'w', 'w@1', '{}', 't', CASE WHEN i % 10 = 0 THEN 'queued'
                   ELSE 'completed' END, strftime('%Y-%m-%dT%H:%M:%fZ', ?2, 'unixepoch', printf('+%d seconds', i / 3)),
                   0, strftime('%Y-%m-%dT%H:%M:%fZ', ?2, 'unixepoch'),
                   CASE WHEN i % 10 = 0 THEN NULL ELSE strftime('%Y-%m-%dT%H:%M:%fZ', ?2, 'unixepoch') END FROM n""",
                     (old, NOW - 40 * DAY))
        conn.execute("INSERT INTO webhook_deliveries (fingerprint, job_id, runpod_status, source, applied, outcome, "
                     "received_at) SELECT 'f-' || id, id, 'COMPLETED', 'webhook', 1, 'applied', updated_at FROM jobs "
                     "WHERE status = 'completed'")
        conn.execute("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
            INSERT INTO idempotency_keys SELECT 'staging', printf('k-%05d', i), 'x', 'job-00001', 'x', ?2 FROM n""",
                     (keys, int((NOW - 3 * DAY) * 1000)))
    conn.close()


def test_many_windows_and_batches_delete_every_old_finished_job_and_pass_the_stuck_ones(tmp_path):
    db = tmp_path / "stack.sqlite"
    # three jobs share each created_at, so windows end inside runs of equal timestamps
    _fill_many(db, old=1_005, keys=2 * service_retention.ROW_BATCH + 7)
    report = retention.prune_local(STAGING, db, 30, now_s=NOW)
    assert report.deleted == {"jobs": 905, "webhook_deliveries": 905, "idempotency_keys": 2_007, "job_metrics": 0}
    assert _ids(db, "SELECT status FROM jobs") == {"queued"}
    assert report.remaining["jobs"] == report.unfinished_kept == 100


class _CutOff:
    """Stands for a connection that drops after `statements` statements (a killed run, a network error)."""

    def __init__(self, db: Any, statements: int) -> None:
        self.db, self.left = db, statements

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if self.left == 0:
            raise ConnectionError("cut")
        self.left -= 1
        return await self.db.query(sql, params)


@pytest.mark.parametrize("statements", [3, 4, 9, 13, 21])
def test_a_prune_cut_off_part_way_leaves_a_consistent_database_and_the_next_run_finishes_it(tmp_path, statements):
    db = tmp_path / "stack.sqlite"
    _fill_many(db, old=450, keys=1_500)
    cutoffs = service_retention.Cutoffs.at(NOW, 30, None)
    conn = retention.open_stack_db(db)
    with pytest.raises(ConnectionError):
        asyncio.run(service_retention.prune(_CutOff(retention._SqliteSql(conn), statements), cutoffs))
    conn.close()
    assert not _ids(db, "SELECT 'x' FROM pragma_foreign_key_check")
    retention.prune_local(STAGING, db, 30, now_s=NOW)
    assert _ids(db, "SELECT status FROM jobs") == {"queued"}
    assert _ids(db, "SELECT count(*) FROM webhook_deliveries") == {0}
    assert _ids(db, "SELECT count(*) FROM idempotency_keys") == {0}


def test_keep_days_below_the_stacks_result_ttl_is_refused_and_nothing_is_deleted(tmp_path):
    db = _stack_db(tmp_path / "stack.sqlite")
    before = _state(db)
    with pytest.raises(retention.PruneRefused, match=r"--keep-days 29 is below prod's R2 result ttl \(30 days"):
        retention.prune_local(PROD, db, 29, now_s=NOW)
    with pytest.raises(retention.PruneRefused, match="--metrics-keep-days 10 is below --keep-days 30"):
        retention.prune_local(STAGING, db, 30, 10, now_s=NOW)
    assert _state(db) == before


def test_another_stacks_database_is_refused_and_nothing_is_deleted(tmp_path):
    # PROD's database pruned as STAGING would use STAGING's 7-day result ttl on rows PROD keeps for 30
    db = _stack_db(tmp_path / "stack.sqlite", stack="prod")
    before = _state(db)
    with pytest.raises(retention.PruneRefused, match="holds the jobs of stack 'prod', not of staging"):
        retention.prune_local(STAGING, db, 7, now_s=NOW)
    assert _state(db) == before


# -- the command ---------------------------------------------------------------------------------

def test_cli_prune_of_a_local_stack_reports_per_table_and_deletes(tmp_path, capsys):
    home = tmp_path / "home"
    db = _stack_db(LocalPlatform(home).db_path("staging"), now=time.time())
    assert main(["prune", "staging", "--home", str(home), "--keep-days", "30", "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] is True and dry["deleted"]["jobs"] == 4 and len(_state(db)["jobs"]) == len(JOBS)
    assert main(["prune", "staging", "--home", str(home), "--keep-days", "30"]) == 0
    out = capsys.readouterr().out
    assert "jobs                 deleted 4, remain 5" in out
    assert "webhook_deliveries   deleted 8, remain 4" in out
    assert "job_metrics          kept (no --metrics-keep-days); 6 rows" in out
    assert "2 queued or in-progress jobs older than the cutoff were kept" in out
    assert "`goldgate stuck staging` lists them, each with the line that recovers it" in out
    assert _state(db)["jobs"] == ALL_JOBS - GONE


def test_cli_prune_without_a_database_fails_with_one_line(tmp_path, capsys):
    assert main(["prune", "staging", "--home", str(tmp_path), "--keep-days", "30"]) == 1
    err = capsys.readouterr().err
    assert "no database at" in err and "goldgate up" in err and err.count("\n") == 1


def test_cli_prune_refuses_keep_days_below_the_result_ttl(tmp_path, capsys):
    home = tmp_path / "home"
    db = _stack_db(LocalPlatform(home).db_path("prod"), now=time.time(), stack="prod")
    assert main(["prune", "prod", "--home", str(home), "--keep-days", "7"]) == 1
    assert "below prod's R2 result ttl (30 days" in capsys.readouterr().err
    assert _state(db)["jobs"] == ALL_JOBS


@pytest.mark.parametrize("flag", ["--keep-days", "--metrics-keep-days"])
@pytest.mark.parametrize("value,said", [("-1", "not a whole number"), ("0", "out of range"),
                                         ("abc", "not a whole number"), ("2.5", "not a whole number"),
                                         ("99999999999999999999", "out of range"), ("3651", "out of range"),
                                         ("9" * 5000, "out of range"), ("²", "not a whole number")])
def test_cli_prune_refuses_bad_day_counts_with_one_line_and_exit_2(tmp_path, capsys, flag, value, said):
    argv = ["prune", "staging", "--home", str(tmp_path), "--keep-days", "30", f"{flag}={value}"]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert said in err[-1] and flag in err[-1]


# -- D1 over REST ----------------------------------------------------------------------------------

@pytest.fixture
def cloud():
    with migrated_d1(TOKEN) as cloud:
        yield cloud


def _d1_state(d1: D1Client, database: str) -> dict[str, set[str]]:
    return {table: {row["k"] for row in d1.query(database, f"SELECT {key} AS k FROM {table}")}
            for table, key in (("jobs", "id"), ("webhook_deliveries", "fingerprint"),
                               ("idempotency_keys", "idempotency_key"), ("job_metrics", "job_id"))}


def test_prune_of_d1_over_rest_deletes_the_same_rows_and_a_rerun_nothing(cloud):
    _, d1, database = cloud
    for sql, params in _rows(NOW):
        d1.query(database, sql, params)
    dry = retention.prune_cloud(STAGING, d1, database, 30, 36, dry_run=True, now_s=NOW)
    assert _d1_state(d1, database)["jobs"] == ALL_JOBS
    report = retention.prune_cloud(STAGING, d1, database, 30, 36, now_s=NOW)
    assert report.deleted == dry.deleted == {"jobs": 4, "webhook_deliveries": 8, "idempotency_keys": 1,
                                             "job_metrics": 3}
    state = _d1_state(d1, database)
    assert state["jobs"] == ALL_JOBS - GONE and state["idempotency_keys"] == {"key-fresh"}
    assert state["webhook_deliveries"] == {f"{j}-{n}" for j in TERMINAL_JOBS - GONE for n in (1, 2)}
    again = retention.prune_cloud(STAGING, d1, database, 30, 36, now_s=NOW)
    assert set(again.deleted.values()) == {0}


def test_cli_cloud_prune_goes_through_the_rest_api(cloud, tmp_path, monkeypatch, capsys):
    standin, d1, database = cloud
    for sql, params in _rows(time.time()):
        d1.query(database, sql, params)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    argv = ["prune", "staging", "--home", str(tmp_path), "--keep-days", "30", "--cloud", "--database-id", database,
            "--account-id", standin.account_id, "--api-base", standin.api_base, "--json"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["deleted"]["jobs"] == 4 and json.loads(out)["target"] == "cloud"
    assert TOKEN not in out
    assert _d1_state(d1, database)["jobs"] == ALL_JOBS - GONE
    # The stuck jobs it kept: `goldgate stuck` lists them, each with its recover line (the admin route on the cloud).
    assert "`goldgate stuck staging --target cloud --database-id <id>` lists them" in retention.render_text(json.loads(out))


def test_cli_cloud_prune_refuses_a_database_id_that_is_not_a_uuid_before_any_call(cloud, tmp_path, monkeypatch,
                                                                                    capsys):
    standin, _, database = cloud
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    seen = len(standin.requests)
    argv = ["prune", "staging", "--home", str(tmp_path), "--keep-days", "30", "--cloud", "--database-id",
            f"{database}/../{database}", "--account-id", standin.account_id, "--api-base", standin.api_base]
    assert main(argv) == 1
    assert "is not a D1 uuid" in capsys.readouterr().err
    assert len(standin.requests) == seen


class _LateWebhook:
    """Records a late delivery for `job_id` right after the prune deletes a window's deliveries."""

    def __init__(self, db: Any, conn: sqlite3.Connection, job_id: str) -> None:
        self.db, self.conn, self.job_id = db, conn, job_id

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        rows = await self.db.query(sql, params)
        if sql.startswith("DELETE FROM webhook_deliveries") and self.job_id:
            self.conn.execute(_DELIVERY, ("late", self.job_id, iso_ms(NOW)))
            self.job_id = ""
        return rows


def test_a_webhook_recorded_between_the_two_deletes_keeps_its_job_until_the_next_run(tmp_path):
    db = _stack_db(tmp_path / "stack.sqlite")
    conn = retention.open_stack_db(db)
    pruned = asyncio.run(service_retention.prune(_LateWebhook(retention._SqliteSql(conn), conn, "old-failed"),
                                                 service_retention.Cutoffs.at(NOW, 30, None)))
    conn.close()
    assert pruned.deleted["jobs"] == 3 and "old-failed" in _state(db)["jobs"]
    assert retention.prune_local(STAGING, db, 30, now_s=NOW).deleted["jobs"] == 1
    assert _state(db)["jobs"] == ALL_JOBS - GONE and "late" not in _state(db)["webhook_deliveries"]


def test_cli_prune_with_a_database_id_but_without_cloud_prunes_nothing(tmp_path, capsys):
    home = tmp_path / "home"
    db = _stack_db(LocalPlatform(home).db_path("staging"), now=time.time())
    argv = ["prune", "staging", "--home", str(home), "--keep-days", "30", "--database-id",
            "12345678-1234-1234-1234-123456789abc"]
    assert main(argv) == 1
    assert "add --cloud" in capsys.readouterr().err
    assert _state(db)["jobs"] == ALL_JOBS


def test_cli_prune_of_a_database_an_older_goldgate_left_says_to_bring_the_stack_up(tmp_path, capsys):
    home = tmp_path / "home"
    db = LocalPlatform(home).db_path("staging")
    db.parent.mkdir(parents=True)
    before = tmp_path / "migrations-0001"
    before.mkdir()
    (before / "0001_init.sql").write_text((MIGRATIONS_DIR / "0001_init.sql").read_text())
    apply_sqlite(db, before)  # the schema the goldgate before idempotency keys created
    assert main(["prune", "staging", "--home", str(home), "--keep-days", "30"]) == 1
    err = capsys.readouterr().err
    assert "migrations not applied: 0002_idempotency_keys.sql" in err and "`goldgate up staging`" in err
    assert err.count("\n") == 1


def test_prune_of_a_d1_an_older_goldgate_migrated_says_pulumi_up_applies_the_rest_and_deletes_nothing(tmp_path):
    before = tmp_path / "migrations-0001"
    before.mkdir()
    (before / "0001_init.sql").write_text((MIGRATIONS_DIR / "0001_init.sql").read_text())
    with D1StandIn(TOKEN) as standin, CloudflareApi(TOKEN, standin.api_base) as api:
        d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
        database = d1.create_database("goldgate-staging").uuid
        apply_with(lambda sql, params: d1.query(database, sql, params), before)
        d1.query(database, *_rows(NOW)[0])  # one old completed job
        with pytest.raises(retention.PruneRefused) as refused:
            retention.prune_cloud(STAGING, d1, database, 30, now_s=NOW)
        assert {row["id"] for row in d1.query(database, "SELECT id FROM jobs")} == {"old-completed"}
    said = str(refused.value)
    assert "migrations not applied: 0002_idempotency_keys.sql" in said and "`pulumi up --stack staging`" in said


# -- the record the readiness checklist reads ----------------------------------------------------

def test_only_a_completed_prune_is_recorded_for_the_checklist(tmp_path, capsys):
    home = tmp_path / "home"
    _stack_db(LocalPlatform(home).db_path("staging"), now=time.time())
    assert main(["prune", "staging", "--home", str(home), "--keep-days", "3"]) == 1  # refused: below the ttl
    assert main(["prune", "staging", "--home", str(home), "--keep-days", "30", "--dry-run"]) == 0
    assert retention.latest_prune(home, "staging", "local") is None
    assert main(["prune", "staging", "--home", str(home), "--keep-days", "30"]) == 0
    capsys.readouterr()
    last = retention.latest_prune(home, "staging", "local")
    assert last["deleted"]["jobs"] == 4 and last["keep_days"] == 30 and last["finished_at"]
    assert last["database"] == str(LocalPlatform(home).db_path("staging"))
    assert retention.latest_prune(home, "staging", "cloud") is None  # a local prune says nothing of D1


def test_a_cloud_prune_records_the_d1_database_it_pruned(cloud, tmp_path, monkeypatch, capsys):
    standin, _, database = cloud
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    assert main(["prune", "staging", "--home", str(tmp_path), "--keep-days", "30", "--cloud", "--database-id",
                 database, "--account-id", standin.account_id, "--api-base", standin.api_base]) == 0
    assert retention.latest_prune(tmp_path, "staging", "cloud")["database"] == database
    assert TOKEN not in retention.record_path(tmp_path, "staging", "cloud").read_text()


@pytest.mark.parametrize("text", ["{", "[]", '{"format": "goldgate.prune.v1", "target": "cloud", "dry_run": false}',
                                  '{"format": "goldgate.prune.v1", "target": "local", "dry_run": true}'])
def test_a_damaged_or_foreign_prune_record_is_an_error_not_evidence(tmp_path, text):
    path = retention.record_path(tmp_path, "staging", "local")
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(StateError, match=r"run `goldgate prune staging --keep-days N` again"):
        retention.latest_prune(tmp_path, "staging", "local")


def test_a_dry_run_behind_thousands_of_stuck_jobs_counts_what_the_prune_then_deletes(tmp_path):
    """13,000 stuck jobs (more than a scheduled run walks) before the finished ones: the command walks them all,
    and its count, its deletes and its stuck-job note agree."""
    db = tmp_path / "stack.sqlite"
    apply_sqlite(db)
    stuck_s, finished_s = NOW - 60 * DAY, NOW - 50 * DAY
    with sqlite3.connect(db) as conn:
        conn.executemany(_JOB, [(f"stuck-{n:05d}", "staging", "{}", "t", "queued", iso_ms(stuck_s + n / 1000), 0,
                                 iso_ms(stuck_s), None) for n in range(13_000)])
        conn.executemany(_JOB, [(f"done-{n:03d}", "staging", "{}", "t", "completed", iso_ms(finished_s + n / 1000), 0,
                                 iso_ms(finished_s), iso_ms(finished_s)) for n in range(250)])
        conn.executemany(_DELIVERY, [(f"done-{n:03d}-1", f"done-{n:03d}", iso_ms(finished_s)) for n in range(250)])
    conn.close()

    dry = retention.prune_local(STAGING, db, 30, dry_run=True, now_s=NOW)
    real = retention.prune_local(STAGING, db, 30, now_s=NOW)

    assert dry.deleted == real.deleted == {"jobs": 250, "webhook_deliveries": 250, "idempotency_keys": 0,
                                           "job_metrics": 0}
    assert dry.unfinished_kept == real.unfinished_kept == 13_000 and dry.remaining == real.remaining
    assert _ids(db, "SELECT status FROM jobs") == {"queued"}
    assert "13000 queued or in-progress jobs older than the cutoff were kept" in retention.render_text(real.to_dict())
