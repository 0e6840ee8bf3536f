"""Service metrics from `job_metrics`, computed in SQL: counts, error rate, cost, and P50/P95/P99.

Percentile definition (nearest rank): over the n non-null values of a duration sorted
ascending, P_p is the value at 1-based rank k = ceil(p * n / 100); no values -> null.
In SQL: rows are first grouped by (worker_image_tag, value) with their counts (streamed from a
covering index, so a million rows need no big sort), then a window running sum
`SUM(c) OVER (PARTITION BY tag ORDER BY v)` gives each distinct value its cumulative count
`cum`, and P_p is MIN(v) over the values with cum * 100 >= p * n, which is exactly
"the first value whose cumulative count reaches ceil(p*n/100)" in integer arithmetic (no
floating point, no math extension: runs on D1 and SQLite alike). The overall percentiles use
the same running sum over the per-value counts merged across tags.

Error rate = (failed + timed_out) / count; cancelled jobs count but are not errors.
Rows are those with created_at (the job's creation, UTC RFC 3339) >= `since`, if given (any ISO 8601
time; no zone = UTC; a fraction below the millisecond rounds up, as rows are stored to the ms).
Groups: overall, and per worker_image_tag (a null tag is reported as null) in the order the tags first
ran: `first_seen` is the earliest created_at of the tag's rows (at or after `since`). A year of releases
pinned by digest would otherwise come in the digests' random order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.ports import Database, Statement

if TYPE_CHECKING:  # sqlite3 is not in the Worker runtime; only the CLI path below needs it
    import sqlite3

PERCENTILES = (50, 95, 99)
DURATIONS = {"e2e_ms": "e2e_ms", "queue_ms": "runpod_queue_duration_ms", "run_ms": "runpod_run_duration_ms"}


class MetricsError(ValueError):
    """A bad `since`; the message shows the accepted form."""


def normalize_since(since: str | datetime | None) -> str | None:
    """`since` as the stored timestamp form (UTC, milliseconds, Z), so text comparison is time order."""
    if since is None or since == "":
        return None
    if isinstance(since, str):
        text = since.strip()
        head, _, tail = text.rpartition(" ")
        if any(sep in head for sep in "Tt "):  # a space after the time is a '+' the client left unencoded in its URL
            text = f"{head}+{tail}"
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise MetricsError(f"since must be an ISO 8601 time such as 2026-01-31T00:00:00Z, "
                               f"got {since[:64]!r}") from None
    else:
        parsed = since
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        in_utc = parsed.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is in the year 10000 in UTC
        raise MetricsError(f"since must fall within the years 0001 to 9999 in UTC, got {str(since)[:64]!r}") from None
    if in_utc.microsecond % 1000:  # rows are stored to the millisecond: one stored at .000 is before .0005
        try:
            in_utc += timedelta(microseconds=1000 - in_utc.microsecond % 1000)
        except OverflowError:  # past 9999-12-31T23:59:59.999Z: no row can be that late
            in_utc = datetime.max.replace(tzinfo=UTC)
    return in_utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _report_sql(column: str, with_summary: bool) -> str:
    """Rows (kind, grp, p50, p95, p99, count, completed, errors, cost_total_usd, costed, first_seen): kind 1 =
    overall percentiles, 0 = one tag's percentiles, 2 = one tag's summary (only `with_summary`:
    it rides on the same index scan, which also covers status and cost)."""
    picks = ", ".join(f"MIN(CASE WHEN cum * 100 >= {p} * n THEN v END) AS p{p}" for p in PERCENTILES)
    empty = ("NULL AS count, NULL AS completed, NULL AS errors, NULL AS cost_total_usd, NULL AS costed, "
             "NULL AS first_seen")
    summary_cols = (", SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS completed, "
                    "SUM(CASE WHEN status IN ('failed', 'timed_out') THEN 1 ELSE 0 END) AS errors, "
                    "SUM(cost_estimate_usd) AS cost, COUNT(cost_estimate_usd) AS costed, "
                    "MIN(created_at) AS earliest") if with_summary else ""
    not_null = "" if with_summary else f"{column} IS NOT NULL AND "
    sql = (
        f"WITH g AS (SELECT worker_image_tag AS tag, {column} AS v, COUNT(*) AS c{summary_cols} FROM job_metrics "
        f"WHERE {not_null}(?1 IS NULL OR created_at >= ?1) GROUP BY worker_image_tag, {column}), "
        "t AS (SELECT tag, v, SUM(c) OVER (PARTITION BY tag ORDER BY v) AS cum, "
        "SUM(c) OVER (PARTITION BY tag) AS n FROM g WHERE v IS NOT NULL), "
        "o AS (SELECT v, SUM(c) OVER (ORDER BY v) AS cum, SUM(c) OVER () AS n "
        "FROM (SELECT v, SUM(c) AS c FROM g WHERE v IS NOT NULL GROUP BY v)) "
        f"SELECT 1 AS kind, NULL AS grp, {picks}, {empty} FROM o "
        f"UNION ALL SELECT 0 AS kind, tag AS grp, {picks}, {empty} FROM t GROUP BY tag"
    )
    if with_summary:
        sql += (" UNION ALL SELECT 2 AS kind, tag AS grp, NULL AS p50, NULL AS p95, NULL AS p99, SUM(c) AS count, "
                "SUM(completed), SUM(errors), SUM(cost), SUM(costed), MIN(earliest) FROM g GROUP BY tag")
    return sql


def queries() -> list[tuple[str, str]]:
    """(name, sql) for every query the report runs; each takes `since` as ?1. The first also
    carries the per-tag summary (counts, errors, cost)."""
    return [(name, _report_sql(col, with_summary=(i == 0))) for i, (name, col) in enumerate(DURATIONS.items())]


def _empty_group() -> dict[str, Any]:
    group: dict[str, Any] = {"count": 0, "completed": 0, "errors": 0, "error_rate": None,
                             "cost_total_usd": None, "cost_mean_usd": None}
    for name in DURATIONS:
        group[name] = {f"p{p}": None for p in PERCENTILES}
    return group


async def compute(db: Database, since: str | datetime | None = None) -> dict[str, Any]:
    """The metrics report over job_metrics rows created at or after `since` (all rows if None)."""
    bound = normalize_since(since)
    overall = _empty_group()
    by_tag: dict[Any, dict[str, Any]] = {}
    first_seen: dict[Any, str] = {}
    totals = {"count": 0, "completed": 0, "errors": 0, "cost": None, "costed": 0}
    named = queries()
    answers = await db.read_many([Statement(sql, (bound,)) for _, sql in named])
    for (name, _), rows in zip(named, answers, strict=True):
        for row in rows:
            if row["kind"] == 2:
                group = by_tag.setdefault(row["grp"], _empty_group())
                first_seen[row["grp"]] = row["first_seen"]
                _fill_summary(group, row["count"], row["completed"], row["errors"], row["cost_total_usd"],
                              row["costed"])
                for key in ("count", "completed", "errors", "costed"):
                    totals[key] += row[key] or 0
                if row["cost_total_usd"] is not None:
                    totals["cost"] = (totals["cost"] or 0.0) + row["cost_total_usd"]
                continue
            group = overall if row["kind"] == 1 else by_tag.setdefault(row["grp"], _empty_group())
            group[name] = {f"p{p}": row[f"p{p}"] for p in PERCENTILES}
    _fill_summary(overall, totals["count"], totals["completed"], totals["errors"], totals["cost"], totals["costed"])
    tags = sorted(by_tag, key=lambda t: (first_seen.get(t) or "", t is None, t or ""))
    return {
        "since": bound,
        "percentile_method": "nearest-rank",
        "overall": overall,
        "by_worker_image_tag": [{"worker_image_tag": tag, "first_seen": first_seen.get(tag), **by_tag[tag]}
                                for tag in tags],
    }


def _fill_summary(group: dict[str, Any], count: int, completed: int | None, errors: int | None,
                  cost_total: float | None, costed: int | None) -> None:
    if not count:
        return
    group.update(count=count, completed=completed or 0, errors=errors or 0, error_rate=(errors or 0) / count,
                 cost_total_usd=cost_total, cost_mean_usd=(cost_total / costed) if costed else None)


class SqliteReader:
    """The read half of the Database port over one plain sqlite3 connection (CLI reports)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    async def read_many(self, statements: Sequence[Statement]) -> list[list[dict[str, Any]]]:
        return await read_in_turn(self, statements)


async def read_in_turn(db: Any, statements: Sequence[Statement]) -> list[list[dict[str, Any]]]:
    """`read_many` for a reader that can only run one statement at a time (`db.query`)."""
    return [await db.query(statement.sql, statement.params) for statement in statements]


def compute_sqlite(db: str | Path | sqlite3.Connection, since: str | datetime | None = None) -> dict[str, Any]:
    """Synchronous convenience for the CLI: the same report straight off a local SQLite file."""
    import sqlite3

    # as_uri() percent-encodes the path: a raw '#', '?' or '%' would make SQLite open another file
    conn = db if isinstance(db, sqlite3.Connection) else sqlite3.connect(f"{Path(db).absolute().as_uri()}?mode=ro",
                                                                          uri=True)
    if not isinstance(db, sqlite3.Connection):
        conn.execute("PRAGMA mmap_size = 1073741824")  # the scans read large covering indexes
    try:
        return asyncio.run(compute(SqliteReader(conn), since))  # type: ignore[arg-type]
    finally:
        if not isinstance(db, sqlite3.Connection):
            conn.close()
