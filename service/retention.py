"""Retention: delete what a stack's database no longer needs, in bounded batches, so D1 stays under 10 GB.

Terminal jobs finished before a cutoff go with their webhook deliveries; queued and in-progress jobs are
never touched (an old one is stuck: `recover` it). Idempotency keys go once their window is over, job
metrics only when asked. Every statement that reads or deletes rows is bounded (a window of the created_at
index, or LIMIT; totals are counted from indexes) so none nears D1's 30 s query limit, and each stands
alone: an interrupted prune leaves a consistent database and the next run carries on. A resumed prune (the
Worker cron's, cut off by its statement budget) starts its walk over old jobs where the last one stopped, so stuck
jobs cannot take every run's budget. Stdlib only and over `query` alone, so a Worker cron can run it on the D1
binding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from service.idempotency import WINDOW_S
from service.jobs import TERMINAL, iso_ms

TABLES = ("jobs", "webhook_deliveries", "idempotency_keys", "job_metrics")
# Jobs per window: a job row may carry 1 MB of inputs, so 100 of them is at most ~100 MB for SQLite to free.
JOB_WINDOW = 100
ROW_BATCH = 1_000  # key rows are small
# Metrics rows are small too, but each one deleted takes a cell out of a random page of the job_id index
# and of each job_metrics_tag_* covering index (migration 0006), and a statement writes every page it
# dirtied: at 1,000 rows a statement, about a page per index per row. Five times the rows dirty far fewer
# than five times the pages: a first prune of 200,000 rows writes a third as much (bench/prune.py). Each
# statement stays well inside D1's 30 s (about 0.5 s locally) and returns 5,000 short rows to the Worker.
METRICS_BATCH = 5_000
DAY_S = 86_400

_TERMINAL_IN = ", ".join(f"'{status}'" for status in sorted(TERMINAL))
# ?1 after, ?2 up to (both created_at, the window), ?3 the cutoff. Finished before the cutoff too: a job
# queued long before it may have finished (and uploaded results) after it.
_IN_WINDOW = "created_at > ?1 AND created_at <= ?2 AND created_at < ?3"
_PRUNABLE = f"{_IN_WINDOW} AND status IN ({_TERMINAL_IN}) AND COALESCE(finished_at, updated_at) < ?3"
# The window's upper bound: the JOB_WINDOW-th created_at after ?1 and before ?2 (where the walk ends), read from
# the index alone.
_WINDOW_END = ("SELECT created_at FROM jobs WHERE created_at > ?1 AND created_at < ?2 ORDER BY created_at "
               "LIMIT 1 OFFSET ?3")
_UNFINISHED = f"SELECT COUNT(*) AS n FROM jobs WHERE {_IN_WINDOW} AND status IN ('queued', 'in_progress')"
_COUNT_WINDOW = (f"SELECT (SELECT COUNT(*) FROM jobs WHERE {_PRUNABLE}) AS jobs, "
                 f"(SELECT COUNT(*) FROM webhook_deliveries WHERE job_id IN (SELECT id FROM jobs WHERE {_PRUNABLE})) "
                 f"AS webhook_deliveries, ({_UNFINISHED}) AS unfinished")
# A metrics row written before migration 0003 has no image count: take it from the job before the job goes.
_KEEP_IMAGE_COUNTS = ("UPDATE job_metrics SET images = (SELECT CASE WHEN j.status <> 'completed' THEN 0 "
                      "WHEN json_valid(j.results_json) THEN json_array_length(j.results_json) ELSE 1 END "
                      "FROM jobs j WHERE j.id = job_metrics.job_id) "
                      f"WHERE images IS NULL AND job_id IN (SELECT id FROM jobs WHERE {_PRUNABLE})")
_DELETE_DELIVERIES = (f"DELETE FROM webhook_deliveries WHERE job_id IN (SELECT id FROM jobs WHERE {_PRUNABLE}) "
                      "RETURNING 1")
# A delivery that arrives between the two statements keeps its job (the foreign key) until the next run.
_DELETE_JOBS = (f"DELETE FROM jobs WHERE {_PRUNABLE} AND NOT EXISTS "
                "(SELECT 1 FROM webhook_deliveries d WHERE d.job_id = jobs.id) RETURNING 1")

# Where a resumed walk over old jobs stopped (migration 0004): the created_at it has reached.
_RESUME_POINT = "SELECT reached FROM retention_cursor WHERE walk = 'jobs'"
_SAVE_RESUME_POINT = ("INSERT INTO retention_cursor (walk, reached) VALUES ('jobs', ?1) "
                      "ON CONFLICT (walk) DO UPDATE SET reached = excluded.reached")

# No index on idempotency_keys.created_at_ms: rows are in insertion order, so the expired ones come first
# and a scan stops after LIMIT matches.
_KEYS_WHERE = "created_at_ms < ?1"
_METRICS_WHERE = "created_at < ?1"
# Counted from the created_at index alone (no row is read), up to the cutoff only.
_COUNT_OLD_METRICS = f"SELECT COUNT(*) AS n FROM job_metrics WHERE {_METRICS_WHERE}"


class Sql(Protocol):
    """The part of the Database port retention needs (D1's binding, D1 over REST, SQLite)."""

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Cutoffs:
    """Rows older than these go: jobs (created and finished), idempotency keys (ms), job metrics (None: kept)."""

    jobs: str
    idempotency_ms: int
    metrics: str | None

    @classmethod
    def at(cls, now_s: float, keep_days: int, metrics_keep_days: int | None) -> Cutoffs:
        return cls(jobs=iso_ms(now_s - keep_days * DAY_S), idempotency_ms=int((now_s - WINDOW_S) * 1000),
                   metrics=None if metrics_keep_days is None else iso_ms(now_s - metrics_keep_days * DAY_S))


@dataclass(frozen=True)
class Pruned:
    """Rows deleted (or, in a dry run, that would be) per table, rows left, and old jobs kept as unfinished."""

    deleted: dict[str, int]
    remaining: dict[str, int]
    unfinished_kept: int


# Columns prune writes that a later migration added (0003: a metrics row keeps its job's image count).
COLUMNS = {"job_metrics": ("images",)}


async def missing_tables(db: Sql) -> list[str]:
    """The tables (and `table.column`s) prune needs that the database lacks: it is not migrated this far."""
    rows = await db.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    present = {row["name"] for row in rows}
    missing = [table for table in TABLES if table not in present]
    for table, columns in COLUMNS.items():
        if table in present:
            have = {row["name"] for row in await db.query(f"PRAGMA table_info({table})")}
            missing += [f"{table}.{column}" for column in columns if column not in have]
    return missing


async def prune(db: Sql, cutoffs: Cutoffs, *, dry_run: bool = False,
                deleted: dict[str, int] | None = None, resume: bool = False) -> Pruned:
    """`deleted` (rows per table) is brought up to date after every statement, so a caller that stops a prune
    part-way (a Worker's statement budget) still knows what went. `resume`: walk the old jobs from where the last
    resumed prune stopped, keeping the point each window reaches (a Worker cron, whose runs each stop part-way)."""
    deleted = dict.fromkeys(TABLES, 0) if deleted is None else deleted
    for table in TABLES:
        deleted.setdefault(table, 0)
    # Keys and metrics before jobs: a few statements a run, they would otherwise wait forever behind a jobs
    # backlog that no run of a Worker's bounded budget gets round (thousands of stuck jobs, a first prune).
    if dry_run:
        deleted["idempotency_keys"] += await _count_keys(db, cutoffs.idempotency_ms)
    else:
        await _delete_in_batches(db, "idempotency_keys", _KEYS_WHERE, cutoffs.idempotency_ms, deleted,
                                 ROW_BATCH)
    if cutoffs.metrics is not None:
        if dry_run:
            deleted["job_metrics"] += await _count(db, _COUNT_OLD_METRICS, (cutoffs.metrics,))
        else:
            await _delete_in_batches(db, "job_metrics", _METRICS_WHERE, cutoffs.metrics, deleted,
                                     METRICS_BATCH)
    unfinished = await _prune_jobs(db, cutoffs.jobs, dry_run, deleted, resume)
    remaining = {}
    for table in TABLES:
        total = await _count(db, f"SELECT COUNT(*) AS n FROM {table}")
        remaining[table] = total - deleted[table] if dry_run else total
    return Pruned(dict(deleted), remaining, unfinished)


async def _prune_jobs(db: Sql, cutoff: str, dry_run: bool, deleted: dict[str, int], resume: bool) -> int:
    """Deletes (or counts) jobs and their deliveries into `deleted`; the unfinished jobs kept. Resumed, the walk goes
    from the stored point to the cutoff and round from the oldest job back to the point: any stored point is safe
    (runs overlap, and a job that turned terminal behind the point is met on the way round)."""
    start = ""
    if resume:
        rows = await db.query(_RESUME_POINT)
        start = rows[0]["reached"] if rows else ""
    unfinished = await _walk_jobs(db, start, cutoff, cutoff, dry_run, deleted, resume)
    if start:  # a point past the cutoff (keep days raised since) ends this way round at the cutoff
        unfinished += await _walk_jobs(db, "", min(start, cutoff), cutoff, dry_run, deleted, resume)
    return unfinished


async def _walk_jobs(db: Sql, after: str, until: str, cutoff: str, dry_run: bool, deleted: dict[str, int],
                     resume: bool) -> int:
    """Jobs created after `after` up to `until`, a window of the created_at index at a time (stuck jobs are passed
    once, not rescanned by every batch); the unfinished jobs kept."""
    unfinished = 0
    while True:
        rows = await db.query(_WINDOW_END, (after, until, JOB_WINDOW - 1))
        upto = rows[0]["created_at"] if rows else until
        window = (after, upto, cutoff)
        if dry_run:
            counts = (await db.query(_COUNT_WINDOW, window))[0]
            deleted["jobs"] += counts["jobs"]
            deleted["webhook_deliveries"] += counts["webhook_deliveries"]
            unfinished += counts["unfinished"]
        else:
            await db.query(_KEEP_IMAGE_COUNTS, window)
            deleted["webhook_deliveries"] += len(await db.query(_DELETE_DELIVERIES, window))
            deleted["jobs"] += len(await db.query(_DELETE_JOBS, window))
            unfinished += await _count(db, _UNFINISHED, window)  # reads only the rows the window kept
            if resume:
                await db.query(_SAVE_RESUME_POINT, (upto,))
        if not rows:
            return unfinished
        after = upto


async def _delete_in_batches(db: Sql, table: str, where: str, cutoff: Any, deleted: dict[str, int],
                             batch: int) -> None:
    while True:
        gone = len(await db.query(f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {where} "
                                  "LIMIT ?2) RETURNING 1", (cutoff, batch)))
        deleted[table] += gone
        if gone < batch:
            return


async def _count_keys(db: Sql, cutoff_ms: int) -> int:
    """Counted a batch at a time in rowid order, as they are deleted: without an index, one COUNT would read
    the whole table in one query."""
    total, last = 0, 0
    while True:
        rows = await db.query(f"SELECT COUNT(*) AS n, MAX(r) AS last FROM (SELECT rowid AS r FROM idempotency_keys "
                              f"WHERE {_KEYS_WHERE} AND rowid > ?2 ORDER BY rowid LIMIT ?3)",
                              (cutoff_ms, last, ROW_BATCH))
        total += rows[0]["n"]
        if rows[0]["n"] < ROW_BATCH:
            return total
        last = rows[0]["last"]


async def _count(db: Sql, sql: str, params: Sequence[Any] = ()) -> int:
    return int((await db.query(sql, params))[0]["n"])
