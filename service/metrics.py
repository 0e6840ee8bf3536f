"""Service metrics from `job_metrics`, computed in SQL: counts, error rate, cost, and P50/P95/P99.

Percentile definition (nearest rank): over the n non-null values of a duration sorted
ascending, P_p is the value at 1-based rank k = ceil(p * n / 100). In SQL each value gets
ROW_NUMBER() in its group's order and the group's COUNT(*); P_p is MIN(value) over the rows
with rank * 100 >= p * n, which is exactly rank >= ceil(p*n/100) in integer arithmetic (no
floating point, no math extension, runs on D1 and SQLite alike). No values -> null.

Error rate = (failed + timed_out) / count; cancelled jobs count but are not errors.
Rows are those with created_at (the job's creation, UTC RFC 3339) >= `since`, if given.
Groups: overall, and per worker_image_tag (null tag reported as null).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.ports import Database

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
        text = since.strip().replace(" ", "+") if "T" in since else since.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise MetricsError(f"since must be an ISO 8601 time such as 2026-01-31T00:00:00Z, "
                               f"got {since[:64]!r}") from None
    else:
        parsed = since
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _percentile_sql(column: str, partitioned: bool) -> str:
    part = "PARTITION BY worker_image_tag " if partitioned else ""
    group = "worker_image_tag" if partitioned else "NULL"
    picks = ", ".join(f"MIN(CASE WHEN rn * 100 >= {p} * n THEN v END) AS p{p}" for p in PERCENTILES)
    return (
        f"SELECT {group} AS grp, {picks} FROM ("
        f"SELECT worker_image_tag, {column} AS v, "
        f"ROW_NUMBER() OVER ({part}ORDER BY {column}) AS rn, COUNT(*) OVER ({part.strip() or ''}) AS n "
        f"FROM job_metrics WHERE {column} IS NOT NULL AND (?1 IS NULL OR created_at >= ?1))"
        + (" GROUP BY worker_image_tag" if partitioned else "")
    )


def _summary_sql(partitioned: bool) -> str:
    group = "worker_image_tag" if partitioned else "NULL"
    return (
        f"SELECT {group} AS grp, COUNT(*) AS count, "
        "SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS completed, "
        "SUM(CASE WHEN status IN ('failed', 'timed_out') THEN 1 ELSE 0 END) AS errors, "
        "SUM(cost_estimate_usd) AS cost_total_usd, AVG(cost_estimate_usd) AS cost_mean_usd "
        "FROM job_metrics WHERE (?1 IS NULL OR created_at >= ?1)"
        + (" GROUP BY worker_image_tag" if partitioned else "")
    )


def queries() -> list[tuple[str, str, bool]]:
    """(name, sql, per-tag) for every query the report runs; each takes `since` as ?1."""
    out = [("summary", _summary_sql(False), False), ("summary", _summary_sql(True), True)]
    for name, column in DURATIONS.items():
        out.append((name, _percentile_sql(column, False), False))
        out.append((name, _percentile_sql(column, True), True))
    return out


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
    for name, sql, per_tag in queries():
        for row in await db.query(sql, (bound,)):
            if per_tag:
                group = by_tag.setdefault(row["grp"], _empty_group())
            else:
                group = overall
            if name == "summary":
                if row["count"] == 0:
                    continue
                group.update(count=row["count"], completed=row["completed"] or 0, errors=row["errors"] or 0,
                             error_rate=(row["errors"] or 0) / row["count"],
                             cost_total_usd=row["cost_total_usd"], cost_mean_usd=row["cost_mean_usd"])
            else:
                group[name] = {f"p{p}": row[f"p{p}"] for p in PERCENTILES}
    tags = sorted(by_tag, key=lambda t: (t is None, t or ""))
    return {
        "since": bound,
        "percentile_method": "nearest-rank",
        "overall": overall,
        "by_worker_image_tag": [{"worker_image_tag": tag, **by_tag[tag]} for tag in tags],
    }


class _SqliteReader:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def compute_sqlite(db: str | Path | sqlite3.Connection, since: str | datetime | None = None) -> dict[str, Any]:
    """Synchronous convenience for the CLI: the same report straight off a local SQLite file."""
    import sqlite3

    conn = db if isinstance(db, sqlite3.Connection) else sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return asyncio.run(compute(_SqliteReader(conn), since))  # type: ignore[arg-type]
    finally:
        if not isinstance(db, sqlite3.Connection):
            conn.close()
