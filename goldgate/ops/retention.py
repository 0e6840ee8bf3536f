"""`goldgate prune`: run service.retention against a stack's database, local SQLite or D1 over REST.

This side decides whether a prune is safe to run (the keep periods against the stack's R2 result ttl, the
database against the stack named) and reports; the SQL lives in service/retention.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from goldgate.cloudflare.d1 import D1Client
from goldgate.errors import GoldgateError, StateError
from goldgate.local.state import read_record, write_json_atomic
from goldgate.migrations import discover as discover_migrations
from goldgate.spec import StackSpec, show
from service import retention
from service.jobs import TERMINAL, iso_ms
from service.sqlite_database import D1_LIMITS

Progress = Callable[[str], None]
DAY_S = retention.DAY_S


def _quiet(_: str) -> None:
    pass


class PruneRefused(GoldgateError):
    """A prune that would delete what must be kept, or run on a database that is not the stack's."""


@dataclass(frozen=True)
class PruneReport:
    stack: str
    target: str
    dry_run: bool
    keep_days: int
    metrics_keep_days: int | None
    jobs_before: str
    metrics_before: str | None
    deleted: dict[str, int]
    remaining: dict[str, int]
    unfinished_kept: int
    # The date an operator gave with --clock-checked, vouching for a clock the gap rule doubted; None without it.
    clock_checked: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_keep_days(spec: StackSpec, keep_days: int, metrics_keep_days: int | None) -> None:
    """A job row is kept as long as R2 may still hold its results, and its metrics at least as long as it."""
    ttl = spec.storage.result_ttl_days
    if keep_days < ttl:
        raise PruneRefused(f"--keep-days {keep_days} is below {spec.name}'s R2 result ttl ({ttl} days, "
                           f"storage.result_ttl_days): jobs whose results still exist would lose their rows; "
                           f"use --keep-days {ttl} or more")
    if metrics_keep_days is not None and metrics_keep_days < keep_days:
        raise PruneRefused(f"--metrics-keep-days {metrics_keep_days} is below --keep-days {keep_days}: a job's "
                           f"metrics are kept at least as long as the job; use {keep_days} or more")


class _SqliteSql:
    """retention.Sql over one SQLite connection, with D1's limits so a statement D1 would refuse fails here too."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, tuple(params))
        cols = [c[0] for c in cur.description or ()]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


class _D1Sql:
    """retention.Sql over the D1 REST API: each statement is one /query call, committed on its own."""

    def __init__(self, client: D1Client, database_id: str) -> None:
        self.client, self.database_id = client, database_id

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.client.query(self.database_id, sql, list(params))


def open_stack_db(path: Path) -> sqlite3.Connection:
    """The stack's existing database, read-write (never created here), waiting its turn behind the running
    service's writes."""
    if not path.is_file():
        raise GoldgateError(f"no database at {path}: bring the stack up (`goldgate up <stack>`) first; "
                            "there is nothing to prune")
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, isolation_level=None)
    for limit, value in D1_LIMITS:
        conn.setlimit(limit, value)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = ON")  # as D1: a job with deliveries left cannot go
    # As the service's connections: a batch of metrics dirties thousands of index pages, which SQLite's
    # default 2 MB cache spills to the WAL part-way and writes again (a first prune of metrics took twice
    # as long).
    conn.execute("PRAGMA cache_size = -65536")
    return conn


def prune_local(spec: StackSpec, path: Path, keep_days: int, metrics_keep_days: int | None = None, *,
                dry_run: bool = False, now_s: float | None = None, clock_checked: str | None = None,
                progress: Progress = _quiet) -> PruneReport:
    check_keep_days(spec, keep_days, metrics_keep_days)
    conn = open_stack_db(path)
    try:
        progress(f"{'counting' if dry_run else 'pruning'} {path}")
        return prune_over(_SqliteSql(conn), spec.name, "local", keep_days, metrics_keep_days, dry_run, now_s,
                          clock_checked, migrate=f"`goldgate up {spec.name}`")
    except sqlite3.DatabaseError as exc:
        raise GoldgateError(f"pruning {path} failed ({exc}); it is safe to run the prune again") from None
    finally:
        conn.close()


def prune_cloud(spec: StackSpec, d1: D1Client, database_id: str, keep_days: int,
                metrics_keep_days: int | None = None, *, dry_run: bool = False, now_s: float | None = None,
                clock_checked: str | None = None, progress: Progress = _quiet) -> PruneReport:
    check_keep_days(spec, keep_days, metrics_keep_days)
    db = _D1Sql(d1, database_id)
    progress(f"{'counting' if dry_run else 'pruning'} D1 {database_id}")
    return prune_over(db, spec.name, "cloud", keep_days, metrics_keep_days, dry_run, now_s, clock_checked,
                      where=f"D1 {database_id}", migrate=f"`pulumi up --stack {spec.name}`")


def prune_over(db: retention.Sql, stack: str, target: str, keep_days: int, metrics_keep_days: int | None,
               dry_run: bool, now_s: float | None, clock_checked: str | None, *, migrate: str,
               where: str = "the database") -> PruneReport:
    """`goldgate prune` over `db`, every guard included (the tables, the stack's own jobs, the clock): the command's
    local and cloud forms, and the local stack host's scheduled retention (goldgate.local.retention_cron)."""
    async def checked_prune() -> tuple[retention.Cutoffs, retention.Pruned]:
        missing = await retention.missing_tables(db)
        if missing:
            raise PruneRefused(await _why_tables_missing(db, missing, where, migrate, target))
        await _refuse_another_stacks_database(db, stack, where, target)
        now = now_s if now_s is not None else await _database_clock(db)
        if clock_checked is None:
            await _refuse_a_clock_far_ahead(db, now, keep_days, metrics_keep_days, target, where)
        else:  # the operator vouches for the clock: it must at least read the date they checked
            check_clock_checked(clock_checked, now, "this machine's clock" if target == "local"
                                else f"the clock of {where}")
        cutoffs = retention.Cutoffs.at(now, keep_days, metrics_keep_days)
        return cutoffs, await retention.prune(db, cutoffs, dry_run=dry_run)

    cutoffs, pruned = asyncio.run(checked_prune())
    return PruneReport(stack=stack, target=target, dry_run=dry_run, keep_days=keep_days,
                       metrics_keep_days=metrics_keep_days, jobs_before=cutoffs.jobs, metrics_before=cutoffs.metrics,
                       deleted=pruned.deleted, remaining=pruned.remaining, unfinished_kept=pruned.unfinished_kept,
                       clock_checked=clock_checked)


async def _database_clock(db: retention.Sql) -> float:
    """Now, by the clock of the database the jobs' times were written against (D1's, or this machine's for the
    local SQLite). The machine running the prune may be a laptop or a runner whose clock is off: a month ahead,
    its cutoff deleted the rows of jobs whose results R2 still serves, and idempotency keys inside their 24 hours."""
    rows = await db.query("SELECT (julianday('now') - 2440587.5) * 86400.0 AS now_s")
    return float(rows[0]["now_s"])


# A stretch with no row this much longer than a keep period is taken for a clock that stepped ahead (as the DR drill
# takes a gap in its backups, goldgate.ops.backup.clock_jump, whose rule this is).
MAX_QUIET_DAYS = 366
# How long either side of the date the clock reads an operator's --clock-checked may be (a date read in local time).
CLOCK_CHECKED_SLACK_DAYS = 1

_STAMP = "'%Y-%m-%dT%H:%M:%fZ'"  # service.jobs.iso_ms, as SQLite writes it
# ?1 now, ?2 the gap ('+N days'). The created_at times of jobs and job_metrics up to now, then now: every stretch
# between two of them longer than the gap, as (quiet_from, quiet_to). A metrics row carries its job's created_at and outlives
# it, so the two tables are one timeline of when jobs were created. Instead of reading every row (LAG over both
# tables: 7 to 10 s at 1,000,000 jobs), it hops along the created_at indexes: from a time to the latest one within the gap
# after it, or, when there is none, past the gap to the first one after it (or now). Every second hop moves a whole
# gap on, so a few years of rows take a few dozen index seeks, however many rows there are.
_WITHIN_GAP = f"strftime({_STAMP}, hop.at, ?2)"
_HOP = ("(SELECT {agg}(t) FROM (SELECT {agg}(created_at) AS t FROM jobs WHERE created_at > hop.at AND created_at <= {to} "
        "UNION ALL SELECT {agg}(created_at) FROM job_metrics WHERE created_at > hop.at AND created_at <= {to}))")
_GAPS = ("WITH RECURSIVE hop(at, prev) AS ("
         "SELECT MIN(t), NULL FROM (SELECT MIN(created_at) AS t FROM jobs WHERE created_at <= ?1 "
         "UNION ALL SELECT MIN(created_at) FROM job_metrics WHERE created_at <= ?1) "
         f"UNION ALL SELECT COALESCE({_HOP.format(agg='MAX', to=_WITHIN_GAP)}, {_HOP.format(agg='MIN', to='?1')}, ?1), "
         "hop.at FROM hop WHERE hop.at < ?1) "
         f"SELECT prev AS quiet_from, at AS quiet_to FROM hop WHERE at > strftime({_STAMP}, prev, ?2) ORDER BY at")
# A finished job that a prune with this cutoff (?2) deletes, created up to ?1 (by the created_at index).
_TERMINAL_IN = ", ".join(f"'{status}'" for status in sorted(TERMINAL))
_DUE_JOB = (f"SELECT id FROM jobs WHERE created_at <= ?1 AND status IN ({_TERMINAL_IN}) "
            "AND COALESCE(finished_at, updated_at) < ?2 LIMIT 1")
_METRIC_UPTO = "SELECT job_id FROM job_metrics WHERE created_at <= ?1 LIMIT 1"


@dataclass(frozen=True)
class _Gap:
    before: str     # the last created_at before the stretch
    after: str      # the first after it, or now
    rows: str       # what a prune would delete from before it: "finished jobs", "job_metrics rows"
    option: str     # the keep period it exceeds: "--keep-days 30"


async def _refuse_a_clock_far_ahead(db: retention.Sql, now_s: float, keep_days: int, metrics_keep_days: int | None,
                                    target: str, where: str) -> None:
    """Every cutoff counts back from now: a clock that stepped years ahead (a VM or a container with a wrong date,
    a faked time, an RTC set by hand to the wrong year) would delete every finished job, every idempotency key and,
    with --metrics-keep-days, every metrics row. Locally the database's clock is this machine's: asking it instead
    of Python's does not help. The rows' created_at times are the evidence of the real date, written before the
    step; the jobs created since were stamped by the wrong clock, so the newest row is no evidence: one job run
    after the step would make it recent. So, as the drill's backups: nothing is deleted while a row due for deletion
    is followed by a stretch of more than its keep period + MAX_QUIET_DAYS in which no job was created (times past
    now, written while a clock was ahead before it was set right, are passed over). The stretch stays after jobs
    run under the wrong clock: every prune is refused until the clock is set right, or an operator vouches for it
    (--clock-checked). A clock behind deletes less, and is let be. Idempotency keys are not weighed: each is written
    with its job, so it is no evidence of its own, and one deleted early costs a retried create its 24 hours of
    deduplication, not a job's row (and keys have no index on their time)."""
    gap = await _gap_before_rows_due(db, now_s, keep_days, metrics_keep_days)
    if gap is None:
        return
    clock = "this machine's clock" if target == "local" else f"the clock of {where}"
    now = iso_ms(now_s)
    before, after = _epoch_s(gap.before), _epoch_s(gap.after)
    days = int((after - before) // DAY_S) if before is not None and after is not None else 0
    until = "until now" if gap.after == now else f"until {gap.after}"
    raise PruneRefused(
        f"{clock} reads {now}, but no job was created in the {days} days after {gap.before} ({until}), more than "
        f"{gap.option} + {MAX_QUIET_DAYS}, and {where} holds {gap.rows} from before then: a clock stepped that far "
        f"ahead (and every job run since, stamped by it) would have them deleted; nothing was deleted. Set the clock "
        f"right (`date -u`), then prune again; if it is right (the stack ran no job for {days} days), prune with "
        f"--clock-checked YYYY-MM-DD, today's UTC date as a clock you trust reads it (with --dry-run first to count)")


async def _gap_before_rows_due(db: retention.Sql, now_s: float, keep_days: int,
                               metrics_keep_days: int | None) -> _Gap | None:
    """The latest stretch with no job created, longer than a keep period + MAX_QUIET_DAYS, that rows the prune would
    delete come before; None when there is none. Every row before such a stretch is older than its cutoff (now -
    keep days), so it is due unless it is a job not finished before the cutoff (stuck, or finished after a step)."""
    now = iso_ms(now_s)
    gaps = await db.query(_GAPS, (now, f"+{keep_days + MAX_QUIET_DAYS} days"))
    if gaps:
        last = gaps[-1]
        cutoff = iso_ms(now_s - keep_days * DAY_S)
        if await db.query(_DUE_JOB, (last["quiet_from"], cutoff)):
            return _Gap(last["quiet_from"], last["quiet_to"], "finished jobs", f"--keep-days {keep_days}")
    if metrics_keep_days is not None:
        longer = [g for g in gaps if _longer_than(g, metrics_keep_days + MAX_QUIET_DAYS)]
        if longer and await db.query(_METRIC_UPTO, (longer[-1]["quiet_from"],)):
            return _Gap(longer[-1]["quiet_from"], longer[-1]["quiet_to"], "job_metrics rows",
                        f"--metrics-keep-days {metrics_keep_days}")
    return None


def _longer_than(gap: dict[str, Any], days: int) -> bool:
    before, after = _epoch_s(gap["quiet_from"]), _epoch_s(gap["quiet_to"])
    return before is not None and after is not None and after - before > days * DAY_S


def check_clock_checked(clock_checked: str, now_s: float, clock: str) -> None:
    """--clock-checked DATE: the operator has read the date from a clock they trust; it must be the date the
    prune's clock reads (a day either side for a date read in local time), or the clock is wrong after all. A date,
    not a bare flag: left in a scheduled command it stops vouching for the clock a day later."""
    try:
        checked = date.fromisoformat(clock_checked)
    except ValueError:
        raise GoldgateError(f"--clock-checked {clock_checked[:64]!r} is not a date; give today's UTC date, "
                            "YYYY-MM-DD") from None
    today = datetime.fromtimestamp(now_s, UTC).date()
    if abs((checked - today).days) > CLOCK_CHECKED_SLACK_DAYS:
        raise PruneRefused(f"--clock-checked {checked.isoformat()} is not the date {clock} reads ({iso_ms(now_s)}): "
                           "the clock is wrong; nothing was deleted. Set it right (`date -u`), then prune again")


def _epoch_s(stamp: Any) -> float | None:
    """A stored created_at (UTC RFC 3339, milliseconds) as seconds since the epoch; None when it is no such time."""
    if not isinstance(stamp, str):
        return None
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()


async def _why_tables_missing(db: retention.Sql, missing: list[str], where: str, migrate: str, target: str) -> str:
    """A goldgate database that an older checkout migrated lacks the newer tables until its migrations are applied
    (after an upgrade, before the next `pulumi up` or `goldgate up`): say how; anything else is another database."""
    tables = {row["name"] for row in await db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    applied = ({row["name"] for row in await db.query("SELECT name FROM d1_migrations")}
               if "d1_migrations" in tables else set())
    behind = [m.name for m in discover_migrations() if m.name not in applied]
    if applied and behind:
        return (f"{where} predates this goldgate (migrations not applied: {', '.join(behind)}): nothing was deleted; "
                f"{migrate} applies them, then prune again")
    # Only a cloud prune names its database (--database-id); a local one prunes the stack's own file.
    check = "check --database-id, or apply the migrations" if target == "cloud" else f"{migrate} applies the migrations"
    return f"{where} has no {', '.join(missing)} table: it is not a migrated goldgate database ({check})"


async def _refuse_another_stacks_database(db: retention.Sql, stack: str, where: str, target: str) -> None:
    """Each job row names the stack that created it: PROD's database pruned under STAGING's shorter result ttl
    would lose rows whose results PROD still keeps. Locally, the database is the stack's own file: another stack's
    jobs are in it after `dr-restore --from-stack`, and pruning it as that stack would prune that stack's file."""
    newest = await db.query("SELECT stack FROM jobs ORDER BY created_at DESC LIMIT 1")  # by the created_at index
    owner = newest[0]["stack"] if newest else None
    if owner is not None and owner != stack:
        if target == "cloud":
            raise PruneRefused(f"{where} holds the jobs of stack {show(owner)}, not of {stack}: nothing was deleted; "
                               "check --database-id, or prune it as that stack")
        raise PruneRefused(f"{stack}'s database holds the jobs of stack {show(owner)}, not of {stack} (restored from "
                           f"its backup with `dr-restore --from-stack`?): nothing was deleted; prune again once {stack} "
                           "has run a job of its own")


# -- the record the readiness checklist reads ------------------------------------------------------

PRUNE_FORMAT = "goldgate.prune.v1"
MAX_PRUNE_RECORD_BYTES = 64 * 1024  # a record holds a few counts: under 1 KB


def record_path(home: Path, stack: str, target: str) -> Path:
    # One per target, as drills: a prune of the local SQLite says nothing of the stack's D1.
    return home / "prunes" / stack / f"latest-{target}.json"


def record(home: Path, report: PruneReport, database: str, finished_at: str) -> Path:
    """Keeps a completed prune (not a dry run) as evidence that the stack's database is being pruned."""
    path = record_path(home, report.stack, report.target)
    write_json_atomic(path, {"format": PRUNE_FORMAT, "finished_at": finished_at, "database": database,
                             **report.to_dict()})
    return path


def latest_prune(home: Path, stack: str, target: str) -> dict[str, Any] | None:
    """The last completed prune of a stack's database on `target`, or None; a damaged record is an error."""
    path = record_path(home, stack, target)
    again = f"goldgate prune {stack} --keep-days N" + (" --target cloud --database-id <uuid>" if target == "cloud" else "")
    raw = read_record(path, MAX_PRUNE_RECORD_BYTES, again)
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("format") != PRUNE_FORMAT or raw.get("target") != target \
            or raw.get("dry_run") is not False:
        raise StateError(f"{path} is not a goldgate record of a {target} prune; run `{again}` again")
    return raw


def render_text(d: dict[str, Any]) -> str:
    verb = "would delete" if d["dry_run"] else "deleted"
    mode = f"{d['target']}, dry run" if d["dry_run"] else d["target"]
    head = (f"{d['stack']}: prune ({mode}): terminal jobs finished before {d['jobs_before']} "
            f"(--keep-days {d['keep_days']})")
    lines = [head]
    if d.get("clock_checked"):
        lines.append(f"  clock: vouched for with --clock-checked {d['clock_checked']} (the gap rule not applied)")
    for table in retention.TABLES:
        if table == "job_metrics" and d["metrics_keep_days"] is None:
            lines.append(f"  {table:<20} kept (no --metrics-keep-days); {d['remaining'][table]} rows")
            continue
        left = "would remain" if d["dry_run"] else "remain"
        lines.append(f"  {table:<20} {verb} {d['deleted'][table]}, {left} {d['remaining'][table]}")
    if d["unfinished_kept"]:
        listed = f"goldgate stuck {d['stack']}" + (" --target cloud --database-id <id>" if d["target"] == "cloud" else "")
        lines.append(f"  note: {d['unfinished_kept']} queued or in-progress jobs older than the cutoff were kept: "
                     f"they are stuck; `{listed}` lists them, each with the line that recovers it "
                     "(docs/RUNBOOK.md, A stuck job)")
    return "\n".join(lines)
