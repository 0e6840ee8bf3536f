"""The local stack host runs the stack's `database.retention` as the cloud's Cron Trigger does, over the stack's
SQLite, as `goldgate prune <stack> --keep-days N --metrics-keep-days M` would: due rows go, fresh and unfinished ones
stay, a clock that looks stepped ahead deletes nothing, the prune is recorded under `<home>/prunes/<stack>/` and
logged as one schema-v1 line in the host's log. It never runs beside another prune of the stack, and a `down` during
a prune stops it with the database consistent.

The host's first run is the one a stack that was down missed (the stack here never ran a prune), so no test waits
for a cron time; the loop's timing is tested on its own in test_review16_ret_schedule.py."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from goldgate import spec as specs
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.migrations import apply_sqlite
from goldgate.ops import retention
from service.jobs import iso_ms

STACK = "staging"  # storage.result_ttl_days 7
RETENTION = {"keep_days": 30, "metrics_keep_days": 60, "cron": "30 3 * * *"}
DAY = 86_400
WAIT_S = 90.0  # a deadline for a hang, not a measured time
LOG_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).resolve().parents[2] / "docs/logging-schema-v1.json").read_text()),
    format_checker=jsonschema.FormatChecker())

_JOB = ("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, created_at, "
        "created_at_ms, updated_at, finished_at) VALUES (?, ?, 'sdxl-txt2img', 'sdxl-txt2img@1.0.0', ?, ?, ?, ?, ?, ?, ?)")
_DELIVERY = ("INSERT INTO webhook_deliveries (fingerprint, job_id, runpod_status, source, applied, outcome, "
             "received_at) VALUES (?, ?, 'COMPLETED', 'webhook', 1, 'applied', ?)")
_METRIC = "INSERT INTO job_metrics (job_id, stack, status, e2e_ms, created_at) VALUES (?, ?, ?, 1000, ?)"
_KEY = ("INSERT INTO idempotency_keys (scope, idempotency_key, request_sha256, job_id, created_at, created_at_ms) "
        "VALUES ('staging', ?, 'x', ?, ?, ?)")

# (id, status, created days ago, finished days ago)
JOBS = [
    ("ancient-completed", "completed", 100, 100),  # its metrics are past metrics_keep_days too
    ("old-completed", "completed", 40, 40),
    ("old-failed", "failed", 40, 40),
    ("old-timed-out", "timed_out", 31, 31),
    ("old-queued", "queued", 40, None),            # stuck: for `recover`, never pruned
    ("old-in-progress", "in_progress", 40, None),
    ("old-but-finished-late", "completed", 40, 3),
    ("recent-completed", "completed", 2, 2),
    ("recent-queued", "queued", 0, None),
]
GONE = {"ancient-completed", "old-completed", "old-failed", "old-timed-out"}


def _stacks_file(home: Path, retention_block: dict[str, Any] = RETENTION) -> Path:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"][STACK]["database"]["retention"] = retention_block
    path = home / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _insert_jobs(db: Path, jobs: list[tuple[str, str, float, float | None]], now: float, inputs: int = 200) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    apply_sqlite(db)
    # The rows made first, then inserted table by table (executemany): the same rows as one INSERT per row, for half
    # the CPU on the 20,000-job database below.
    body = json.dumps({"prompt": "x" * inputs})
    job_rows, deliveries, metrics = [], [], []
    for job_id, status, created, finished in jobs:
        created_s = now - created * DAY
        updated = iso_ms(now - finished * DAY) if finished is not None else iso_ms(created_s)
        job_rows.append((job_id, STACK, body, job_id, status, iso_ms(created_s), int(created_s * 1000), updated,
                         None if finished is None else updated))
        if finished is not None:
            deliveries.append((f"{job_id}-1", job_id, updated))
            metrics.append((job_id, STACK, status, iso_ms(created_s)))
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(_JOB, job_rows)
        conn.executemany(_DELIVERY, deliveries)
        conn.executemany(_METRIC, metrics)
        for key, age_s in (("key-old", 2 * DAY), ("key-fresh", 3_600)):
            conn.execute(_KEY, (key, "recent-completed", iso_ms(now - age_s), int((now - age_s) * 1000)))
    conn.close()


def _ids(db: Path, sql: str) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {row[0] for row in conn.execute(sql)}
    finally:
        conn.close()


def _consistent(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []  # no delivery left without its job
    finally:
        conn.close()


def _host_lines(home: Path) -> list[dict[str, Any]]:
    log = StackDir(home, STACK).logs_dir / "stackhost.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def _retention_lines(home: Path) -> list[dict[str, Any]]:
    return [e for e in _host_lines(home) if e["event"].startswith("retention.")]


def _wait_for_retention_line(home: Path) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while not _retention_lines(home) and time.monotonic() < deadline:
        time.sleep(0.1)
    (line,) = _retention_lines(home)
    LOG_SCHEMA.validate(line)
    assert line["component"] == "orchestrator" and line["stack"] == STACK
    return line


@pytest.fixture
def platform(home: Path) -> Iterator[LocalPlatform]:
    p = LocalPlatform(home, _stacks_file(home))
    try:
        yield p
    finally:
        p.down(STACK)


def test_a_stack_with_retention_comes_up_and_its_host_prunes_due_rows_only(platform: LocalPlatform) -> None:
    db = StackDir(platform.home, STACK).db_path
    _insert_jobs(db, JOBS, time.time())

    platform.up(STACK)

    line = _wait_for_retention_line(platform.home)
    assert (line["event"], line["level"], line["status"]) == ("retention.pruned", "info", "complete")
    assert line["data"]["deleted"] == {"jobs": 4, "webhook_deliveries": 4, "idempotency_keys": 1, "job_metrics": 1}
    assert line["data"]["unfinished_kept"] == 2 and "`goldgate stuck staging` lists them" in line["message"]
    assert line["data"]["cron"] == "30 3 * * *" and line["data"]["keep_days"] == 30
    assert _ids(db, "SELECT id FROM jobs") == {j[0] for j in JOBS} - GONE
    assert _ids(db, "SELECT idempotency_key FROM idempotency_keys") == {"key-fresh"}
    assert _ids(db, "SELECT job_id FROM job_metrics") == {j[0] for j in JOBS if j[3] is not None} - {
        "ancient-completed"}
    _consistent(db)
    # recorded as `goldgate prune` records one: the checklist and the next start read it
    record = retention.latest_prune(platform.home, STACK, "local")
    assert record is not None and record["keep_days"] == 30 and record["metrics_keep_days"] == 60
    assert record["deleted"]["jobs"] == 4 and record["database"] == str(db)


def test_the_hosts_prune_keeps_the_clock_guard_of_goldgate_prune(platform: LocalPlatform) -> None:
    # The only finished job was created 800 days ago and none since: a clock stepped two years ahead reads so.
    db = StackDir(platform.home, STACK).db_path
    _insert_jobs(db, [("lone-completed", "completed", 800, 800)], time.time())

    platform.up(STACK)

    line = _wait_for_retention_line(platform.home)
    assert (line["event"], line["level"], line["reason"]) == ("retention.failed", "error", "prune_refused")
    assert "nothing was deleted" in line["message"] and "--clock-checked" in line["message"]
    assert _ids(db, "SELECT id FROM jobs") == {"lone-completed"}
    assert retention.latest_prune(platform.home, STACK, "local") is None
    assert platform.status(STACK).running  # a refused run is logged; the host serves on


def test_down_during_a_prune_stops_the_host_and_leaves_the_database_consistent(platform: LocalPlatform) -> None:
    db = StackDir(platform.home, STACK).db_path
    old = [(f"old-{n:05d}", "completed", 40.0 + n / 10_000, 40.0) for n in range(20_000)]
    _insert_jobs(db, [*old, ("recent-completed", "completed", 2, 2)], time.time(), inputs=1_000)

    platform.up(STACK)
    platform.down(STACK)  # the host's first prune started as the stack became ready

    lines = _host_lines(platform.home)
    assert lines[-1]["event"] == "stack.stopped"
    (line,) = [e for e in lines if e["event"].startswith("retention.")]
    assert line["event"] == "retention.pruned" and line["status"] in ("partial", "complete")
    _consistent(db)
    left = _ids(db, "SELECT id FROM jobs")
    assert "recent-completed" in left
    if line["status"] == "partial":  # stopped part-way: not recorded as a prune, and the next run carries on
        assert retention.latest_prune(platform.home, STACK, "local") is None
    else:
        assert left == {"recent-completed"}


# -- one run, with the host's own stop -----------------------------------------------------------------------------

class _StopAfter:
    """The host's stop, set once the prune has made `statements` statements."""

    def __init__(self, statements: int) -> None:
        self.left = statements

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0


class _Never:
    def is_set(self) -> bool:
        return False


def _run_in(home: Path, stop: Any) -> Any:
    # Imported here: the tests above run without the module (on a goldgate that lacks it they fail by behaviour).
    from goldgate.local.retention_cron import RetentionRun

    spec = specs.load_local(STACK, _stacks_file(home))
    return RetentionRun(spec, home, stop)(datetime.now(UTC))


def test_a_prune_stopped_part_way_keeps_what_it_did_and_the_next_run_finishes(home: Path) -> None:
    db = StackDir(home, STACK).db_path
    old = [(f"old-{n:04d}", "completed", 40.0 + n / 10_000, 40.0) for n in range(1_000)]
    _insert_jobs(db, [*old, ("recent-completed", "completed", 2, 2)], time.time())

    stopped = _run_in(home, _StopAfter(40))

    assert (stopped.kind, stopped.status) == ("pruned", "partial")
    _consistent(db)
    left = _ids(db, "SELECT id FROM jobs")
    assert 1 < len(left) < 1_001, "the stop came part-way through the old jobs"
    assert retention.latest_prune(home, STACK, "local") is None  # a partial prune is no prune's evidence

    finished = _run_in(home, _Never())

    assert (finished.kind, finished.status) == ("pruned", "complete")
    assert _ids(db, "SELECT id FROM jobs") == {"recent-completed"}
    _consistent(db)


def test_a_run_while_another_prune_holds_the_stack_deletes_nothing_and_names_it(home: Path) -> None:
    from goldgate.local.retention_cron import pruning

    db = StackDir(home, STACK).db_path
    _insert_jobs(db, JOBS, time.time())

    with pruning(StackDir(home, STACK), "`goldgate prune staging`") as holder:
        assert holder is None
        outcome = _run_in(home, _Never())

    assert (outcome.kind, outcome.reason) == ("skipped", "busy")
    assert "`goldgate prune staging`" in outcome.message
    assert _ids(db, "SELECT id FROM jobs") == {j[0] for j in JOBS}
