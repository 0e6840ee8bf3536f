"""Service metrics from `job_metrics`, computed in SQL: counts, error rate, cost, and P50/P95/P99.

The percentile definition, the rows each figure counts, the groups and how the SQL finds them:
docs/WEBHOOK_SEMANTICS.md, "Metrics report".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service import spend
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


def _since_sql(with_since: bool) -> str:
    """The rows' condition on `since` (?1): none when the report covers every row, so no row pays for it."""
    return "created_at >= ?1" if with_since else "1"


# A duration the search can narrow down to: not NULL, not text or a blob, and within +-(2**62 - 1) ms, so that
# hi - lo of any interval the search halves fits in a 64-bit integer (SQLite turns an overflowing one into an
# inexact REAL; a hand-written infinity would never be halved down). The service never writes anything else;
# such a value counts as no value, as NULL does.
DURATION_LIMIT_MS = 2**62 - 1
_FINITE = f"BETWEEN {-DURATION_LIMIT_MS} AND {DURATION_LIMIT_MS}"


def _floor(value: str) -> str:
    """SQL for the whole milliseconds at or below `value` (standard SQL: SQLite's floor() is optional)."""
    return f"CAST({value} AS INTEGER) - ({value} < CAST({value} AS INTEGER))"


def _search_sql(name: str, count: Callable[[str, str], str]) -> str:
    """The recursive CTE `name`(grp, p, k, lo, hi, m, below, c, up) from the rows of `name`_start: the
    k-th smallest value of a group lies in [lo, hi), which holds m of its values and has `below` of
    them under it. A row with c null is an interval to split at mid: c becomes the count below
    mid, counted directly, or as m minus the count at and above mid when `up` (the upper half is
    expected to hold fewer rows: it held fewer at the step before, or this is the first step);
    the next row keeps the half that holds the k-th value. The search of a group ends at its row
    with c null and hi - lo = 1: its value is lo."""
    mid = "s.lo + (s.hi - s.lo) / 2"
    lower = "s.c IS NULL OR s.c >= s.k"  # a row to count, or the k-th value is below mid
    return (
        f"{name}(grp, p, k, lo, hi, m, below, c, up) AS (SELECT * FROM {name}_start UNION ALL SELECT s.grp, s.p, "
        f"CASE WHEN {lower} THEN s.k ELSE s.k - s.c END, "
        f"CASE WHEN {lower} THEN s.lo ELSE {mid} END, "
        f"CASE WHEN s.c IS NULL OR s.c < s.k THEN s.hi ELSE {mid} END, "
        "CASE WHEN s.c IS NULL THEN s.m WHEN s.c >= s.k THEN s.c ELSE s.m - s.c END, "
        f"CASE WHEN {lower} THEN s.below ELSE s.below + s.c END, "
        f"CASE WHEN s.c IS NOT NULL THEN NULL WHEN s.up THEN s.m - {count(mid, 's.hi')} "
        f"ELSE {count('s.lo', mid)} END, "
        "CASE WHEN s.c IS NULL THEN s.up ELSE 2 * s.c >= s.m END "
        f"FROM {name} AS s WHERE s.c IS NOT NULL OR s.hi - s.lo > 1)")


def _report_sql(column: str, with_summary: bool, with_since: bool = True) -> str:
    """Rows (kind, grp, p, v, count, completed, errors, cost_total_usd, costed, first_seen): kind 0 = one
    tag's P_p = v, 1 = the overall P_p, 2 = one tag's summary (only `with_summary`: it rides on
    the scan that counts the tags' values, whose covering index also covers status and cost).
    `with_since`: the rows are those created at or after ?1; else every row (the SQL takes no parameter)."""
    since = _since_sql(with_since)

    def in_tag(tag: str, lo: str, hi: str) -> str:
        return (f"(SELECT COUNT(*) FROM job_metrics WHERE worker_image_tag IS {tag} AND {column} >= {lo} "
                f"AND {column} < {hi} AND {since})")

    def across_tags(lo: str, hi: str) -> str:
        return (f"(SELECT COUNT(*) FROM tags JOIN job_metrics ON worker_image_tag IS tags.tag WHERE tags.n > 0 "
                f"AND {column} >= {lo} AND {column} < {hi} AND {since})")

    def edge(order: str) -> str:  # the tag's smallest or largest value: an index seek to the first row in range
        # as whole milliseconds, so that every bound and midpoint of the search is an integer
        return (f"(SELECT {_floor('v')} FROM (SELECT {column} AS v FROM job_metrics WHERE worker_image_tag IS "
                f"tags.tag AND {column} {_FINITE} AND {since} ORDER BY {column} {order} LIMIT 1))")

    percentiles = " UNION ALL ".join(f"SELECT {p} AS p" for p in PERCENTILES)
    empty = ("NULL AS count, NULL AS completed, NULL AS errors, NULL AS cost_total_usd, NULL AS costed, "
             "NULL AS first_seen")
    if with_summary:
        tags = (f"tags AS (SELECT worker_image_tag AS tag, "
                f"COUNT(CASE WHEN {column} {_FINITE} THEN 1 END) AS n, COUNT(*) AS count, "
                "SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS completed, "
                "SUM(CASE WHEN status IN ('failed', 'timed_out') THEN 1 ELSE 0 END) AS errors, "
                "SUM(cost_estimate_usd) AS cost, COUNT(cost_estimate_usd) AS costed, MIN(created_at) AS first_seen "
                f"FROM job_metrics WHERE {since} GROUP BY worker_image_tag)")
    else:  # counted per tag, found by index seeks: cheaper than grouping every row by its long tag
        tags = ("tag_seek(tag) AS (SELECT MIN(worker_image_tag) FROM job_metrics UNION ALL SELECT (SELECT "
                "worker_image_tag FROM job_metrics WHERE worker_image_tag > s.tag ORDER BY worker_image_tag LIMIT 1) "
                "FROM tag_seek AS s WHERE s.tag IS NOT NULL), "
                f"tags AS (SELECT tag, (SELECT COUNT(*) FROM job_metrics WHERE worker_image_tag IS t.tag AND {column} "
                f"{_FINITE} AND {since}) AS n FROM (SELECT NULL AS tag UNION ALL SELECT tag FROM tag_seek "
                "WHERE tag IS NOT NULL) AS t)")
    sql = (
        f"WITH RECURSIVE {tags}, "
        f"pct(p) AS ({percentiles}), "
        # each tag's search: k = ceil(p * n / 100) in [its smallest value, its largest + 1), all n values inside
        f"tag_search_start AS (SELECT tags.tag, p, (p * tags.n + 99) / 100, {edge('ASC')}, {edge('DESC')} + 1, tags.n, 0, "
        "NULL, 1 FROM tags, pct WHERE tags.n > 0), "
        f"{_search_sql('tag_search', lambda lo, hi: in_tag('s.grp', lo, hi))}, "
        "tag_p(grp, p, v, below) AS (SELECT grp, p, lo, below FROM tag_search WHERE c IS NULL AND hi - lo <= 1), "
        "bracket(p, k, lo, hi) AS (SELECT p, (p * (SELECT SUM(n) FROM tags) + 99) / 100, MIN(v), MAX(v) + 1 "
        "FROM tag_p GROUP BY p), "
        # below the bracket: each tag's values below its own P_p, less those between the bracket's start and it
        f"all_search_start AS (SELECT NULL, b.p, b.k - (SELECT SUM(t.below - {in_tag('t.grp', 'b.lo', 't.v')}) "
        f"FROM tag_p AS t WHERE t.p = b.p), b.lo, b.hi, {across_tags('b.lo', 'b.hi')}, 0, NULL, 1 "
        "FROM bracket AS b), "
        f"{_search_sql('all_search', across_tags)} "
        f"SELECT 0 AS kind, grp, p, v, {empty} FROM tag_p "
        "UNION ALL SELECT 1, NULL, p, lo, NULL, NULL, NULL, NULL, NULL, NULL FROM all_search WHERE c IS NULL AND hi - lo <= 1"
    )
    if with_summary:
        sql += " UNION ALL SELECT 2, tag, NULL, NULL, count, completed, errors, cost, costed, first_seen FROM tags"
    return sql


def queries(with_since: bool = True) -> list[tuple[str, str]]:
    """(name, sql) for every percentile query the report runs (the workflow versions' group is
    `version_query`, run with them when asked); each takes `since` as ?1 (`with_since`), or no parameter at all for a
    report over every row. The first also carries the per-tag summary (counts, errors, cost)."""
    return [(name, _report_sql(col, with_summary=(i == 0), with_since=with_since))
            for i, (name, col) in enumerate(DURATIONS.items())]


# The durations whose mean each workflow version's group carries (`<name>_mean`).
VERSION_MEANS = ("e2e_ms", "run_ms")


_MAX_REAL = "1.7976931348623157e308"  # the largest finite double

# Rowids per chunk of the workflow versions' scan (below): small enough that each chunk's sort stays in memory
# and in cache, big enough that the chunks' own rows stay few (245 over 1,000,000 rows).
VERSION_CHUNK_ROWS = 4096


def version_name_sql(column: str) -> str:
    """SQL naming a stored workflow_version as the report does: text as it is, null as null; a hand-written blob
    (JSON holds none) as SQL writes it (X'..'), any other value as text."""
    return (f"CASE typeof({column}) WHEN 'text' THEN {column} WHEN 'null' THEN NULL WHEN 'blob' THEN quote({column}) "
            f"ELSE CAST({column} AS TEXT) END")


def version_query(with_since: bool = True) -> str:
    """One row per workflow_version (grp): its count, completed, errors, cost_total_usd, costed, first_seen, and
    for each of VERSION_MEANS the total (`<name>_total`, a REAL: TOTAL never overflows) and number (`<name>_n`)
    of its counted values. `with_since` as for `queries`.

    No index leads with workflow_version, so its rows are read from the table and grouped by a sort. One sort
    of every row (GROUP BY over the table) took about 0.9 s of CPU over 1,000,000 rows, more than the three
    percentile searches together: its records spill out of the cache. Here the table is read in chunks, the
    rows whose rowids lie in [lo, lo + VERSION_CHUNK_ROWS), each grouped by its own small sort into a JSON
    array of per-version partial figures, and those few partials summed per version: about half the CPU. The
    next chunk starts at the first rowid after the chunk (one seek), so a gap in the rowids (pruned rows) makes
    no empty chunk: never more chunks than rows. Past the largest rowid, lo + VERSION_CHUNK_ROWS becomes a
    REAL, which SQLite compares exactly with the rowids. JSON keeps integers exact and a REAL to 15
    significant digits (a cost total to far below a cent)."""
    since = _since_sql(with_since)
    # `rowid + 0`: MIN(rowid) would step the table from its first row to the first one at `since`; this reads the
    # created_at index's range (its entries carry the rowid)
    first = ("(SELECT MIN(rowid + 0) FROM job_metrics WHERE created_at >= ?1)" if with_since
             else "(SELECT MIN(rowid) FROM job_metrics)")
    mean_parts = "".join(f", TOTAL(CASE WHEN {DURATIONS[name]} {_FINITE} THEN {DURATIONS[name]} END), "
                         f"COUNT(CASE WHEN {DURATIONS[name]} {_FINITE} THEN 1 END)" for name in VERSION_MEANS)
    version = version_name_sql("workflow_version")
    # nor an infinity (absurd hand-written costs overflow their sum): SQLite versions write it as `Inf` (not
    # JSON) or 9.0e+999; it goes as the text 'inf' and comes back as 9e999, SQLite's literal for it
    cost = (f"CASE WHEN SUM(cost_estimate_usd) > {_MAX_REAL} THEN 'inf' WHEN SUM(cost_estimate_usd) < -{_MAX_REAL} "
            "THEN '-inf' ELSE SUM(cost_estimate_usd) END")
    partial = (f"SELECT json_array({version}, COUNT(*), SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END), "
               f"SUM(CASE WHEN status IN ('failed', 'timed_out') THEN 1 ELSE 0 END), {cost}, "
               f"COUNT(cost_estimate_usd), MIN(created_at){mean_parts}) AS part FROM job_metrics "
               f"WHERE rowid >= c.lo AND rowid < c.lo + {VERSION_CHUNK_ROWS} AND {since} GROUP BY workflow_version")

    def at(i: int) -> str:
        return f"json_extract(p.value, '$[{i}]')"

    means = "".join(f", TOTAL({at(7 + 2 * i)}) AS {name}_total, SUM({at(8 + 2 * i)}) AS {name}_n"
                    for i, name in enumerate(VERSION_MEANS))
    return (f"WITH RECURSIVE c(lo) AS (SELECT {first} UNION ALL SELECT (SELECT MIN(rowid) FROM job_metrics WHERE "
            f"rowid >= c.lo + {VERSION_CHUNK_ROWS}) FROM c WHERE c.lo IS NOT NULL), "
            f"chunks(parts) AS (SELECT (SELECT json_group_array(json(part)) FROM ({partial})) FROM c) "
            f"SELECT {at(0)} AS grp, SUM({at(1)}) AS count, SUM({at(2)}) AS completed, SUM({at(3)}) AS errors, "
            f"SUM(CASE {at(4)} WHEN 'inf' THEN 9e999 WHEN '-inf' THEN -9e999 ELSE {at(4)} END) AS cost_total_usd, "
            f"SUM({at(5)}) AS costed, MIN({at(6)}) AS first_seen{means} "
            "FROM chunks, json_each(chunks.parts) AS p GROUP BY grp")


def _version_group(row: dict[str, Any]) -> dict[str, Any]:
    group: dict[str, Any] = {"workflow_version": row["grp"], "first_seen": row["first_seen"], "count": 0,
                             "completed": 0, "errors": 0, "error_rate": None, "cost_total_usd": None,
                             "cost_mean_usd": None}
    _fill_summary(group, row["count"], row["completed"], row["errors"], row["cost_total_usd"], row["costed"])
    for name in VERSION_MEANS:
        group[f"{name}_mean"] = row[f"{name}_total"] / row[f"{name}_n"] if row[f"{name}_n"] else None
    return group


def _empty_group() -> dict[str, Any]:
    group: dict[str, Any] = {"count": 0, "completed": 0, "errors": 0, "error_rate": None,
                             "cost_total_usd": None, "cost_mean_usd": None}
    for name in DURATIONS:
        group[name] = {f"p{p}": None for p in PERCENTILES}
    return group


async def compute(db: Database, since: str | datetime | None = None,
                  by_workflow_version: bool = False, today: tuple[float, float | None] | None = None,
                  client_limit_usd: float | None = None) -> dict[str, Any]:
    """The metrics report over job_metrics rows created at or after `since` (all rows if None). The workflow
    versions' group (`by_workflow_version`, one more statement in the batch: about as much work as the three
    percentile queries together) only when asked; without it the answer has no such key. `today` (now, the daily
    spend limit): `daily_spend`, the day's spend the limit is judged by, read in the same batch (one primary-key
    read; the API's answer has it, service/spend.py), with each named client's spend today (`clients`, biggest first, at
    most spend.MAX_CLIENTS_SHOWN) and their own daily limit (`client_limit_usd`, api.client_daily_spend_limit_usd)."""
    bound = normalize_since(since)
    overall = _empty_group()
    by_tag: dict[Any, dict[str, Any]] = {}
    first_seen: dict[Any, str] = {}
    totals = {"count": 0, "completed": 0, "errors": 0, "cost": None, "costed": 0}
    named = queries(with_since=bound is not None)
    params = () if bound is None else (bound,)
    statements = [Statement(sql, params) for _, sql in named]
    if by_workflow_version:  # its scan and sort first: read_many's workers take the longest statement first
        statements.insert(0, Statement(version_query(with_since=bound is not None), params))
    if today is not None:
        statements.append(spend.today_statement(today[0]))
        statements.append(spend.clients_today_statement(today[0]))
    answers = await db.read_many(statements)
    spent = None
    if today is not None:
        clients = spend.clients_today(answers.pop())
        spent = {**spend.today(answers.pop(), *today).to_dict(), "client_limit_usd": client_limit_usd,
                 "clients": clients}
    versions = answers.pop(0) if by_workflow_version else None
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
            group[name][f"p{row['p']}"] = row["v"]
    _fill_summary(overall, totals["count"], totals["completed"], totals["errors"], totals["cost"], totals["costed"])
    tags = sorted(by_tag, key=lambda t: (first_seen.get(t) or "", t is None, t or ""))
    report: dict[str, Any] = {
        "since": bound,
        "percentile_method": "nearest-rank",
        "overall": overall,
        "by_worker_image_tag": [{"worker_image_tag": tag, "first_seen": first_seen.get(tag), **by_tag[tag]}
                                for tag in tags],
    }
    if spent is not None:
        report["daily_spend"] = spent
    if versions is not None:
        report["by_workflow_version"] = [_version_group(row) for row in sorted(
            versions, key=lambda r: (r["first_seen"] or "", r["grp"] is None, r["grp"] or ""))]
    return report


def _usd(value: float) -> float:
    """A cost figure to 12 significant digits (far below a cent): SQLite's SUM() adds REALs compensated (Kahan-Babuska-
    Neumaier) in newer releases, plainly in older ones, so D1 and an older local SQLite differ in the last bits, as
    do two groups of the same rows summed in another order; and D1 hands an integral REAL back as an int (0, not
    0.0). Both runtimes then answer the same number."""
    return float(f"{float(value):.12g}")


def _fill_summary(group: dict[str, Any], count: int, completed: int | None, errors: int | None,
                  cost_total: float | None, costed: int | None) -> None:
    if not count:
        return
    group.update(count=count, completed=completed or 0, errors=errors or 0, error_rate=(errors or 0) / count,
                 cost_total_usd=None if cost_total is None else _usd(cost_total),
                 cost_mean_usd=_usd(cost_total / costed) if costed and cost_total is not None else None)


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


def compute_sqlite(db: str | Path | sqlite3.Connection, since: str | datetime | None = None,
                   by_workflow_version: bool = False) -> dict[str, Any]:
    """Synchronous convenience for the CLI: the same report straight off a local SQLite file."""
    import sqlite3

    # as_uri() percent-encodes the path: a raw '#', '?' or '%' would make SQLite open another file
    conn = db if isinstance(db, sqlite3.Connection) else sqlite3.connect(f"{Path(db).absolute().as_uri()}?mode=ro",
                                                                          uri=True)
    if not isinstance(db, sqlite3.Connection):
        conn.execute("PRAGMA mmap_size = 1073741824")  # the scans read large covering indexes
    try:
        return asyncio.run(compute(SqliteReader(conn), since, by_workflow_version))  # type: ignore[arg-type]
    finally:
        if not isinstance(db, sqlite3.Connection):
            conn.close()
