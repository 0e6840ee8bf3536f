"""The metrics report of a stack: percentiles, error rate and cost per release, as text, JSON or HTML.

The figures come from `service.metrics` (P50/P95/P99 computed in SQL over `job_metrics`, the
same code the API serves, with the releases in the order they first ran); this module adds what an
operator compares releases by: cost per 1,000 images, cost per completed job, the cancelled jobs and the
end-to-end latency histogram; `goldgate metrics` adds the stack's `thresholds.error_rate` (`error_rate_threshold`).
Failed and cancelled jobs are inside every percentile and `cost_per_job_usd` (a release that fails fast and cheap
looks faster and cheaper): compare the error rates first; `cost_per_completed_job_usd` leaves them out.
When asked (`by_workflow_version`: `goldgate metrics --by-workflow-version`), the same figures per workflow version
(`by_workflow_version`, a second table in the text and in the HTML), with mean run and end-to-end times in place of
percentiles (see service.metrics); without it the report reads nothing per version and costs what it did before versions.
When asked (`spend`: `goldgate metrics --spend`), where the money went, for a cost spike: the spend per GPU type and
the costliest jobs (`spend` in the report: text and JSON).
The HTML page is self-contained (inline SVG and CSS, no scripts, no external assets).
"""

from __future__ import annotations

import asyncio
import html
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from goldgate.cloudflare.d1 import D1Client
from goldgate.errors import GoldgateError
from goldgate.ops.fingerprint import connect_read_only
from service import metrics as service_metrics
from service import spend as service_spend
from service.ports import Statement

HISTOGRAM_BINS = 20
PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0891b2", "#db2777", "#65a30d")
# A year of releases cannot each have a colour: the charts name the newest len(PALETTE) releases and draw
# the earlier ones in one grey (the table lists every release).
EARLIER = "#94a3b8"


class MetricsUnavailable(GoldgateError):
    """The stack's database cannot be read or has no job_metrics table."""


class _D1Reader:
    """service.metrics' Database port over the D1 REST API (read-only use)."""

    def __init__(self, client: D1Client, database_id: str) -> None:
        self.client, self.database_id = client, database_id

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.client.query(self.database_id, sql, list(params))

    async def read_many(self, statements: Sequence[Statement]) -> list[list[dict[str, Any]]]:
        return await service_metrics.read_in_turn(self, statements)


def open_sqlite(path: Path, stack: str = "<stack>") -> sqlite3.Connection:
    if not path.is_file():
        raise MetricsUnavailable(f"no database at {path}: bring the stack up (`goldgate up {stack}`) and run jobs")
    try:
        conn = connect_read_only(path)
        conn.execute("SELECT 1 FROM job_metrics LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise MetricsUnavailable(f"{path} has no readable job_metrics table ({exc}); apply the migrations "
                                 "(`goldgate up` does) before asking for metrics") from None
    return conn


# The rows with an end-to-end time, as service.metrics counts them: a number within +-(2**62 - 1) ms. A damaged
# row's text, blob, infinity or huge number counts as no time there, and here (it made int() and SQLite's binding
# raise).
_TIMED = (f"e2e_ms BETWEEN {-service_metrics.DURATION_LIMIT_MS} AND {service_metrics.DURATION_LIMIT_MS} "
          "AND (?1 IS NULL OR created_at >= ?1)")


async def _extras(db: Any, since: str | None, by_workflow_version: bool = False) -> dict[str, Any]:
    """Images and completed jobs' cost per release (and per workflow version when asked: one row per release and
    version, which build_report sums) for cost per 1,000 images and per completed job, and the e2e histogram."""
    # A database not migrated to 0003 yet (D1 until the next `pulumi up`) has no images column.
    own = "m.images" if any(c["name"] == "images" for c in await db.query("PRAGMA table_info(job_metrics)")) else "NULL"
    # The row's own count (migration 0003) outlives a pruned job. A row written before it counts its job's
    # results (looked up only then: COALESCE stops at the first non-null); a job pruned before the migration, or
    # a results_json that is not JSON (a damaged row), counts as one image.
    images = (f"COALESCE({own}, CASE WHEN m.status = 'completed' THEN COALESCE((SELECT CASE WHEN "
              "json_valid(j.results_json) THEN json_array_length(j.results_json) END FROM jobs j WHERE j.id = m.job_id), "
              "1) ELSE 0 END)")
    # Each row's count is worked out once, in a subquery SQLite does not flatten (its LIMIT, which limits nothing):
    # flattened, both sums below evaluated it, and a million rows written before 0003 looked their job up twice
    # each (seconds locally; on D1, near its 30 s limit per query).
    # Asked for versions: one row per release and workflow version (build_report sums the rows of each); else
    # one per release, as before versions.
    named, picked, grouped = ((f"{service_metrics.version_name_sql('m.workflow_version')} AS version, ", "version, ",
                               ", version") if by_workflow_version else ("", "", ""))
    releases = await db.query(
        f"SELECT tag, {picked}SUM(n) AS images, "
        # the images that have a cost: a job recovered from its stored outcome has images, but no cost
        "SUM(CASE WHEN costed THEN n ELSE 0 END) AS costed_images, "
        # cost per completed job: failed and cancelled jobs' $0 or small cost left out
        "SUM(CASE WHEN ok THEN cost END) AS ok_cost, COUNT(CASE WHEN ok THEN cost END) AS ok_costed "
        f"FROM (SELECT m.worker_image_tag AS tag, {named}m.cost_estimate_usd IS NOT NULL AS costed, "
        f"m.cost_estimate_usd AS cost, m.status = 'completed' AS ok, {images} AS n "
        f"FROM job_metrics m WHERE (?1 IS NULL OR m.created_at >= ?1) LIMIT -1) GROUP BY tag{grouped}", (since,))
    bounds = (await db.query(f"SELECT MIN(e2e_ms) AS lo, MAX(e2e_ms) AS hi FROM job_metrics WHERE {_TIMED}",
                             (since,)))[0]
    histogram: dict[str, Any] = {"bin_ms": None, "start_ms": None, "bins": []}
    if bounds["lo"] is not None:
        lo, hi = int(bounds["lo"]), int(bounds["hi"])
        width = max(1, -(-(hi - lo + 1) // HISTOGRAM_BINS))
        rows = await db.query(
            "SELECT worker_image_tag AS tag, CAST((e2e_ms - ?2) / ?3 AS INTEGER) AS bin, COUNT(*) AS n "
            f"FROM job_metrics WHERE {_TIMED} GROUP BY worker_image_tag, bin", (since, lo, width))
        histogram = {"bin_ms": width, "start_ms": lo,
                     "bins": [{"worker_image_tag": r["tag"], "bin": int(r["bin"]), "count": r["n"]} for r in rows]}
    return {"releases": releases, "histogram": histogram}


# A cost or run time SQLite holds as a number; a damaged row's text or blob is no cost (it would sort above
# every number and top the list).
_NUMBER = "typeof({0}) IN ('integer', 'real')"
COSTLIEST_JOBS = 10


async def _spend(db: Any, since: str | None) -> dict[str, Any]:
    """Where the spend went: per GPU type (jobs, errors, spend, mean run time), biggest spender first, and the
    COSTLIEST_JOBS jobs with the highest cost estimate, each with its release and GPU: for a cost spike, which
    GPU type and which jobs, without SQL. Two more scans of the rows (on D1, two more queries)."""
    cost, run = _NUMBER.format("cost_estimate_usd"), _NUMBER.format("runpod_run_duration_ms")
    gpus = await db.query(
        "SELECT gpu_type, COUNT(*) AS jobs, "
        "SUM(CASE WHEN status IN ('failed', 'timed_out') THEN 1 ELSE 0 END) AS errors, "
        f"SUM(CASE WHEN {cost} THEN cost_estimate_usd END) AS spend, "
        f"COUNT(CASE WHEN {cost} THEN 1 END) AS costed, "
        f"AVG(CASE WHEN {run} THEN runpod_run_duration_ms END) AS run_mean "
        "FROM job_metrics WHERE (?1 IS NULL OR created_at >= ?1) GROUP BY gpu_type "
        "ORDER BY spend IS NULL, spend DESC, jobs DESC", (since,))
    top = await db.query(
        "SELECT job_id, worker_image_tag, workflow_version, gpu_type, status, created_at, cost_estimate_usd AS cost, "
        f"CASE WHEN {run} THEN runpod_run_duration_ms END AS run_ms "
        f"FROM job_metrics WHERE (?1 IS NULL OR created_at >= ?1) AND {cost} "
        "ORDER BY cost_estimate_usd DESC, created_at LIMIT ?2", (since, COSTLIEST_JOBS))
    return {
        "by_gpu_type": [{"gpu_type": g["gpu_type"], "jobs": g["jobs"], "errors": g["errors"],
                         "spend_usd": service_metrics._usd(g["spend"]) if g["spend"] is not None else None,
                         "cost_per_job_usd": (service_metrics._usd(g["spend"] / g["costed"])
                                              if g["spend"] is not None and g["costed"] else None),
                         "run_ms_mean": round(g["run_mean"]) if g["run_mean"] is not None else None} for g in gpus],
        "costliest_jobs": [{"job_id": j["job_id"], "worker_image_tag": j["worker_image_tag"],
                            "workflow_version": j["workflow_version"], "gpu_type": j["gpu_type"],
                            "status": j["status"], "run_ms": j["run_ms"], "cost_usd": service_metrics._usd(j["cost"]),
                            "created_at": j["created_at"]} for j in top],
    }


async def _daily_spend(db: Any, now_s: float) -> dict[str, Any] | None:
    """Today's (UTC) spend as the service counts it for api.daily_spend_limit_usd (the daily_spend row a create reads),
    `limit_usd` None until the caller fills in the stack's; None for a database not migrated to 0009 yet (D1 until
    the next `pulumi up`). With each named client's spend today (`clients`, as GET /api/metrics has it: biggest
    first, at most 100; None before migration 0011) and `client_limit_usd` (None until the caller fills it in)."""
    tables = {row["name"] for row in await db.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('daily_spend', 'client_daily_spend')")}
    if "daily_spend" not in tables:
        return None
    today = service_spend.today_statement(now_s)
    spent = service_spend.today(await db.query(today.sql, list(today.params)), now_s, None).to_dict()
    clients = None
    if "client_daily_spend" in tables:
        statement = service_spend.clients_today_statement(now_s)
        clients = service_spend.clients_today(await db.query(statement.sql, list(statement.params)))
    return {**spent, "client_limit_usd": None, "clients": clients}


def _with_image_costs(group: dict[str, Any], images: int | None, costed_images: int | None,
                      ok_cost: tuple[float | None, int] = (None, 0)) -> dict[str, Any]:
    """`images`: every image the group's jobs made; `costed_images`: those of its jobs that have a cost;
    `ok_cost`: (total cost, jobs with a cost) of its completed jobs."""
    total = group.get("cost_total_usd")
    group["images"] = images
    # neither completed nor an error (failed or timed out): cancelled
    group["cancelled"] = group["count"] - group["completed"] - group["errors"]
    # Divided here, after the SQL: rounded as the API rounds its sums and means (service.metrics._usd), so D1 and an
    # older local SQLite give the same figure.
    group["cost_per_completed_job_usd"] = (service_metrics._usd(ok_cost[0] / ok_cost[1])
                                           if ok_cost[0] is not None and ok_cost[1] else None)
    # The API's mean (service.metrics: over the jobs with an estimate), as the cost per 1,000 images counts only
    # the images of those jobs: a job whose cost is unknown (recovered from its stored outcome) is not a $0 job.
    group["cost_per_job_usd"] = group.get("cost_mean_usd")
    group["cost_per_1000_images_usd"] = (service_metrics._usd(total / costed_images * 1000)
                                         if total is not None and costed_images else None)
    return group


def build_report(db: Any, stack: str, since: str | None = None, by_workflow_version: bool = False,
                 spend: bool = False) -> dict[str, Any]:
    """The full report from a Database-port reader (SQLite or D1); `by_workflow_version`: with the versions' group;
    `spend`: with the spend per GPU type and the costliest jobs."""
    async def gather() -> tuple[dict[str, Any], dict[str, Any]]:
        base = await service_metrics.compute(db, since, by_workflow_version)
        extras = await _extras(db, base["since"], by_workflow_version)
        extras["daily_spend"] = await _daily_spend(db, time.time())
        if spend:
            extras["spend"] = await _spend(db, base["since"])
        return base, extras

    try:
        base, extras = asyncio.run(gather())
    except service_metrics.MetricsError as exc:
        raise MetricsUnavailable(str(exc)) from None
    except sqlite3.DatabaseError as exc:
        raise MetricsUnavailable(f"reading job_metrics failed ({exc})") from None
    everything = _summed(extras["releases"], None).get(None, (0, 0, (None, 0)))
    _with_image_costs(base["overall"], *everything)
    by_tag = _summed(extras["releases"], "tag")
    for group in base["by_worker_image_tag"]:
        images, costed, ok_cost = by_tag.get(group["worker_image_tag"], (None, None, (None, 0)))
        _with_image_costs(group, images, costed, ok_cost)
    if by_workflow_version:
        by_version = _summed(extras["releases"], "version")
        for group in base["by_workflow_version"]:
            images, costed, ok_cost = by_version.get(group["workflow_version"], (None, None, (None, 0)))
            _with_image_costs(group, images, costed, ok_cost)
    report = {"stack": stack, **base, "histogram": extras["histogram"], "daily_spend": extras["daily_spend"]}
    if spend:
        report["spend"] = extras["spend"]
    return report


def _summed(rows: list[dict[str, Any]], key: str | None) -> dict[Any, tuple[int, int, tuple[float | None, int]]]:
    """The rows of `_extras` (per release, or per release and version) summed per `key` ("tag", "version", or None: all of them):
    (images, costed images, (completed jobs' cost or None, completed jobs with a cost))."""
    sums: dict[Any, list[Any]] = {}
    for r in rows:
        s = sums.setdefault(r[key] if key else None, [0, 0, None, 0])
        s[0] += int(r["images"] or 0)
        s[1] += int(r["costed_images"] or 0)
        if r["ok_cost"] is not None:
            s[2] = (s[2] or 0.0) + r["ok_cost"]
        s[3] += int(r["ok_costed"] or 0)
    return {k: (s[0], s[1], (s[2], s[3])) for k, s in sums.items()}


def report_from_sqlite(path: Path, stack: str, since: str | None = None,
                       by_workflow_version: bool = False, spend: bool = False) -> dict[str, Any]:
    conn = open_sqlite(path, stack)
    try:
        return build_report(service_metrics.SqliteReader(conn), stack, since, by_workflow_version, spend)
    finally:
        conn.close()


def report_from_d1(client: D1Client, database_id: str, stack: str, since: str | None = None,
                   by_workflow_version: bool = False, spend: bool = False) -> dict[str, Any]:
    return build_report(_D1Reader(client, database_id), stack, since, by_workflow_version, spend)


# -- text ---------------------------------------------------------------------------------------

def _ms(value: Any) -> str:
    return "-" if value is None else f"{value / 1000:.1f}s"


def _usd(value: Any, digits: int = 5) -> str:
    return "-" if value is None else f"${value:.{digits}f}"


def _total_usd(value: Any) -> str:
    """A total as the first line shows it: as today's spend beside it is (cents from $10, else its own digits), so a
    small stack's $0.00093 does not read as $0.00 next to today's $0.00093."""
    return "-" if value is None else service_spend.dollars(value)


def short_tag(tag: str | None) -> str:
    if not tag:
        return "(untagged)"
    repo, _, digest = tag.partition("@sha256:")
    return f"{repo.rsplit('/', 1)[-1]}@{digest[:12]}" if digest else tag[-40:]


def _when(first_seen: str | None) -> str:
    """`2026-01-31 09:00` (UTC): among a year of releases, when each one began is how a reader finds it."""
    return first_seen[:16].replace("T", " ") if first_seen else "-"


def _rate(rate: float | None, limit: float | None = None) -> str:
    """`7.00%`, flagged `7.00% !` when above the stack's thresholds.error_rate."""
    if rate is None:
        return "-"
    return f"{rate * 100:.2f}%" + (" !" if limit is not None and rate > limit else "")


def _row(name: str, g: dict[str, Any], limit: float | None = None) -> dict[str, Any]:
    row = {"release": name, "first seen": _when(g.get("first_seen")), "jobs": g["count"],
           "failed": g.get("errors"), "cancelled": g.get("cancelled"), "error_rate": _rate(g["error_rate"], limit),
           "spend": _usd(g.get("cost_total_usd"), 2), "cost/job": _usd(g.get("cost_per_job_usd")),
           "cost/ok job": _usd(g.get("cost_per_completed_job_usd")),
           "cost/1k img": _usd(g.get("cost_per_1000_images_usd"), 3)}
    for metric in ("queue_ms", "run_ms", "e2e_ms"):
        for p in ("p50", "p95", "p99"):
            row[f"{metric[:-3]} {p}"] = _ms(g[metric][p])
    return row


COLUMNS = ["release", "first seen", "jobs", "error_rate", "failed", "cancelled", "queue p50", "queue p95", "queue p99",
           "run p50", "run p95", "run p99", "e2e p50", "e2e p95", "e2e p99", "spend", "cost/job", "cost/ok job",
           "cost/1k img"]


VERSION_COLUMNS = ["workflow version", "first seen", "jobs", "error_rate", "failed", "cancelled", "run mean",
                   "e2e mean", "spend", "cost/job", "cost/ok job", "cost/1k img"]


def _version_row(g: dict[str, Any], limit: float | None = None) -> dict[str, Any]:
    """A workflow version's row: no percentiles (service.metrics computes none per version), the mean times."""
    return {"workflow version": g["workflow_version"] or "(none)", "first seen": _when(g.get("first_seen")),
            "jobs": g["count"], "failed": g.get("errors"), "cancelled": g.get("cancelled"),
            "error_rate": _rate(g["error_rate"], limit), "run mean": _ms(g.get("run_ms_mean")),
            "e2e mean": _ms(g.get("e2e_ms_mean")), "spend": _usd(g.get("cost_total_usd"), 2),
            "cost/job": _usd(g.get("cost_per_job_usd")), "cost/ok job": _usd(g.get("cost_per_completed_job_usd")),
            "cost/1k img": _usd(g.get("cost_per_1000_images_usd"), 3)}


def pinned_now(report: dict[str, Any]) -> str:
    """The release the stack is pinned to now, in the rows' own short form, or "" when unknown. Each row
    covers every job its release ran, so after a rollback the release it took the stack off still reads
    worst: `goldgate rollback` moves the stack off this one, whichever row looks worst."""
    image = report.get("pinned_image")
    return f"; pinned now: {short_tag(image)}" if image else ""


def summary(report: dict[str, Any]) -> str:
    """Every job by outcome, the spend, and the error rate against the stack's thresholds.error_rate (the one the
    checklist and the alert judge by), for the first line: the table under it is one row per release."""
    g, limit = report["overall"], report.get("error_rate_threshold")
    text = (f"{g['count']} jobs: {g['completed']} completed, {g['errors']} failed or timed out, "
            f"{g.get('cancelled', 0)} cancelled; spend {_total_usd(g.get('cost_total_usd'))}; error rate "
            f"{_rate(g['error_rate'])} (failed + timed out over every job)")
    if limit is None:
        return text + ", thresholds.error_rate unknown (the stack's spec could not be read)"
    above = g["error_rate"] is not None and g["error_rate"] > limit
    return text + f" {'ABOVE' if above else 'within'} thresholds.error_rate {_rate(limit)} (! marks a row above it)"


def daily_spend_line(report: dict[str, Any]) -> str:
    """Today's spend against api.daily_spend_limit_usd, whatever --since is: what creates are refused by."""
    today = report.get("daily_spend")
    if today is None:
        return "today's spend: unknown (the database has no daily_spend table: migration 0009 not applied yet)"
    limit = today.get("limit_usd")
    # as the 429's message shows them: a local stack's fractions of a cent and a small limit read as themselves
    dollars = service_spend.dollars
    text = f"today ({today['day']} UTC): spend {dollars(today['spend_usd'])} over {today['jobs']} job{'' if today['jobs'] == 1 else 's'} ended, "
    if limit is None and today.get("limit_known") is False:
        return text + "daily spend limit unknown (the stack's settings cannot be read)"
    if limit is None:
        return text + "no daily spend limit (api.daily_spend_limit_usd not set)"
    over = today["spend_usd"] >= limit
    return text + (f"daily spend limit {dollars(limit)} (api.daily_spend_limit_usd)"
                   + (": REACHED, creates are refused 429 spend_limit_reached until 00:00 UTC" if over else ""))


def client_spend_text(today: dict[str, Any] | None) -> str:
    """Each named client's spend today against its own limit (api.client_daily_spend_limit_usd): what a client's
    creates are refused by (`goldgate metrics --spend`)."""
    if today is None or today.get("clients") is None:
        return ("clients' spend today: unknown (the database has no client_daily_spend table: migration 0011 not "
                "applied yet)")
    limit = today.get("client_limit_usd")
    dollars = service_spend.dollars
    if limit is None and today.get("client_limit_known") is False:
        head = "clients' spend today (each client's own daily spend limit unknown: the stack's settings cannot be read)"
    elif limit is None:
        head = "clients' spend today (no client's own daily spend limit: api.client_daily_spend_limit_usd not set)"
    else:
        head = (f"clients' spend today (each client's own daily spend limit {dollars(limit)}, "
                "api.client_daily_spend_limit_usd)")
    clients = today["clients"]
    if not clients:
        return head + ": none (no job of a named client ended today)"
    # the list is cut at MAX_CLIENTS_SHOWN (clients removed and added in one day can leave more rows than a stack's
    # clients): a full list may not be all of them
    shown = len(clients)
    lines = [head + (f", the {shown} biggest first (the list stops at {shown}: more clients may have spent today):"
                     if shown >= service_spend.MAX_CLIENTS_SHOWN else ", biggest first:")]
    for c in clients:
        reached = limit is not None and c["spend_usd"] >= limit
        lines.append(f"  {c['client']}: {dollars(c['spend_usd'])} over {c['jobs']} job{'' if c['jobs'] == 1 else 's'}"
                     + (" REACHED, its creates are refused 429 client_spend_limit_reached until 00:00 UTC"
                        if reached else ""))
    return "\n".join(lines)


def render_text(report: dict[str, Any]) -> str:
    """The first line: the report's scope, its summary and the release pinned now; then one row for every job
    (`all`) and one per release. Failed and cancelled jobs are inside every percentile and cost/job (compare
    error rates first); cost/ok job is over completed jobs only. With the workflow versions' group (asked for) and
    any job, a second table after a blank line: one row per version, with mean run and end-to-end times (no
    percentiles)."""
    from goldgate.commands.output import table

    limit = report.get("error_rate_threshold")
    rows = [_row("all", report["overall"], limit)]
    rows += [_row(short_tag(g["worker_image_tag"]), g, limit) for g in report["by_worker_image_tag"]]
    since = f" since {report['since']}" if report.get("since") else ""
    method = report["percentile_method"]
    head = (f"{report['stack']}: job metrics{since} (percentiles: {method}); {summary(report)}; "
            f"{daily_spend_line(report)}{pinned_now(report)}")
    text = head + "\n" + table(rows, COLUMNS)
    versions = report.get("by_workflow_version") or []
    if versions:
        text += "\n\n" + table([_version_row(g, limit) for g in versions], VERSION_COLUMNS)
    if "spend" in report:
        text += "\n\n" + render_spend(report["spend"]) + "\n\n" + client_spend_text(report.get("daily_spend"))
    return text


GPU_COLUMNS = ["gpu type", "jobs", "failed", "run mean", "spend", "cost/job"]
JOB_COLUMNS = ["job", "release", "gpu type", "status", "run", "cost", "created"]


def render_spend(spend: dict[str, Any]) -> str:
    """Spend per GPU type, biggest first, then the costliest jobs: `goldgate metrics --spend`."""
    from goldgate.commands.output import table

    gpus = [{"gpu type": g["gpu_type"] or "(none)", "jobs": g["jobs"], "failed": g["errors"],
             "run mean": _ms(g["run_ms_mean"]), "spend": _usd(g["spend_usd"], 2),
             "cost/job": _usd(g["cost_per_job_usd"])} for g in spend["by_gpu_type"]]
    jobs = [{"job": j["job_id"], "release": short_tag(j["worker_image_tag"]), "gpu type": j["gpu_type"] or "(none)",
             "status": j["status"], "run": _ms(j["run_ms"]), "cost": _usd(j["cost_usd"]),
             "created": _when(j["created_at"])} for j in spend["costliest_jobs"]]
    text = "spend by GPU type (biggest first)\n" + table(gpus, GPU_COLUMNS)
    if not jobs:
        return text + "\n\ncostliest jobs: none has a cost estimate"
    return (text + f"\n\ncostliest jobs (the {len(jobs)} with the highest cost estimate; `GET /api/status/<job>` "
            "and `grep <job> <logs>` tell the rest)\n" + table(jobs, JOB_COLUMNS))


# -- HTML ---------------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _histogram_svg(report: dict[str, Any], series: list[tuple[str, str, list[Any]]]) -> str:
    """Bars stacked by `series`: (label, colour, the tags it sums), bottom first."""
    hist = report["histogram"]
    w, h, left, bottom, top = 1000, 320, 60, 40, 20
    if not hist["bins"]:
        return f'<svg width="{w}" height="80" role="img"><text x="20" y="40">no end-to-end timings yet</text></svg>'
    counts: dict[tuple[Any, int], int] = {(b["worker_image_tag"], b["bin"]): b["count"] for b in hist["bins"]}
    nbins = max(b["bin"] for b in hist["bins"]) + 1
    per_bin = [sum(b["count"] for b in hist["bins"] if b["bin"] == i) for i in range(nbins)]
    peak = max(per_bin) or 1
    bar_w = (w - left - 10) / nbins
    # Enough decimals that neighbouring labels differ (bins of 0.1 s need one, of 0.01 s two).
    labelled_ms = hist["bin_ms"] * max(1, nbins // 8)
    decimals = 0 if labelled_ms >= 1000 else 1 if labelled_ms >= 100 else 2
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
             'aria-label="end-to-end latency histogram">'),
             f'<line x1="{left}" y1="{h - bottom}" x2="{w - 10}" y2="{h - bottom}" stroke="#334155"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#334155"/>',
             f'<text x="8" y="{top + 10}" font-size="12">{peak}</text>',
             f'<text x="8" y="{h - bottom}" font-size="12">0</text>']
    for i in range(nbins):
        y = h - bottom
        for label, color, tags in series:
            n = sum(counts.get((tag, i), 0) for tag in tags)
            if not n:
                continue
            bh = n / peak * (h - top - bottom)
            y -= bh
            parts.append(f'<rect x="{left + i * bar_w + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                         f'height="{bh:.1f}" fill="{color}"><title>{_e(label)}: {n} jobs</title></rect>')
        if i % max(1, nbins // 8) == 0:
            start = (hist["start_ms"] + i * hist["bin_ms"]) / 1000
            parts.append(f'<text x="{left + i * bar_w:.1f}" y="{h - bottom + 16}" font-size="11">'
                         f'{start:.{decimals}f}s</text>')
    parts.append(f'<text x="{w / 2:.0f}" y="{h - 6}" font-size="12" text-anchor="middle">end-to-end time</text>')
    parts.append("</svg>")
    return "".join(parts)


def _comparison_svg(groups: list[dict[str, Any]], colors: dict[Any, str]) -> str:
    metrics = [(m, p) for m in ("queue_ms", "run_ms", "e2e_ms") for p in ("p50", "p95", "p99")]
    w, h, left, bottom, top = 1000, 320, 60, 50, 20
    values = [g[m][p] or 0 for g in groups for m, p in metrics]
    peak = max(values, default=0) or 1
    slot = (w - left - 10) / len(metrics)
    bar_w = max((slot - 8) / max(len(groups), 1), 1)
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
             'aria-label="latency percentiles by release">'),
             f'<line x1="{left}" y1="{h - bottom}" x2="{w - 10}" y2="{h - bottom}" stroke="#334155"/>',
             f'<text x="8" y="{top + 10}" font-size="12">{peak / 1000:.0f}s</text>']
    for k, (m, p) in enumerate(metrics):
        x0 = left + k * slot + 4
        for j, g in enumerate(groups):
            v = g[m][p]
            if v is None:
                continue
            bh = v / peak * (h - top - bottom)
            parts.append(f'<rect x="{x0 + j * bar_w:.1f}" y="{h - bottom - bh:.1f}" width="{bar_w - 1:.1f}" '
                         f'height="{bh:.1f}" fill="{colors[g["worker_image_tag"]]}"><title>'
                         f'{_e(short_tag(g["worker_image_tag"]))} {m[:-3]} {p}: {v / 1000:.1f}s</title></rect>')
        parts.append(f'<text x="{x0 + slot / 2 - 4:.1f}" y="{h - bottom + 16}" font-size="11" text-anchor="middle">'
                     f'{m[:-3]} {p}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _versions_html(report: dict[str, Any], limit: float | None) -> str:
    """The workflow versions' table when the report has their group (asked for), as the text's second table: one
    row per version, mean run and end-to-end times (no percentiles); "" without the group (the default report)."""
    if "by_workflow_version" not in report:
        return ""
    versions = report["by_workflow_version"]
    if not versions:
        return "<h2>Workflow versions</h2>\n<p>No job in the report, so no workflow version.</p>\n"
    head = "".join(f"<th>{_e(c)}</th>" for c in VERSION_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{_e(r[c])}</td>" for c in VERSION_COLUMNS) + "</tr>"
                   for r in (_version_row(g, limit) for g in versions))
    return ("<h2>Workflow versions (in the order they first ran; mean times: no percentiles per version)</h2>\n"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n")


def render_html(report: dict[str, Any]) -> str:
    groups = report["by_worker_image_tag"]
    charted = groups[-len(PALETTE):]  # groups are in first-seen order: these are the newest releases
    colors = {g["worker_image_tag"]: PALETTE[i] for i, g in enumerate(charted)}
    earlier = len(groups) - len(charted)
    series = [(short_tag(tag), colors[tag], [tag]) for tag in colors]
    if earlier:
        series.insert(0, (f"{earlier} earlier releases", EARLIER, [g["worker_image_tag"] for g in groups[:earlier]]))
    legend = "".join(f'<span class="key"><i style="background:{colors[g["worker_image_tag"]]}"></i>'
                     f'{_e(short_tag(g["worker_image_tag"]))} (first seen {_e(g.get("first_seen") or "-")})</span>'
                     for g in charted)
    grey = f'<span class="key"><i style="background:{EARLIER}"></i>{earlier} earlier releases</span>' if earlier else ""
    which = f"the newest {len(charted)} of {len(groups)} releases" if earlier else "releases"
    limit = report.get("error_rate_threshold")
    rows = [_row("all", report["overall"], limit)] + [_row(short_tag(g["worker_image_tag"]), g, limit)
                                                      for g in groups]
    head = "".join(f"<th>{_e(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{_e(r[c])}</td>" for c in COLUMNS) + "</tr>" for r in rows)
    versions = _versions_html(report, limit)
    since = f" since {_e(report['since'])}" if report.get("since") else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>goldgate metrics: {_e(report['stack'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #0f172a; background: #ffffff; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 17px; margin-top: 28px; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #cbd5e1; padding: 4px 8px; text-align: right; }}
th {{ background: #e2e8f0; }} td:first-child {{ text-align: left; font-family: monospace; }}
.key {{ margin-right: 18px; font-size: 13px; }} .key i {{ display: inline-block; width: 12px; height: 12px;
margin-right: 6px; vertical-align: middle; }}
</style></head><body>
<h1>goldgate metrics: {_e(report['stack'])}{since}</h1>
<p>{report['overall']['count']} jobs; percentiles by {_e(report['percentile_method'])} over job_metrics\
{_e(pinned_now(report))}.</p>
<p>{_e(summary(report))}. Failed and cancelled jobs are inside every percentile and cost/job: compare the error
rates first; cost/ok job is over completed jobs only.</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{versions}<h2>End-to-end latency histogram</h2><div>{legend}{grey}</div>
{_histogram_svg(report, series)}
<h2>Latency percentiles by release ({which}, in the order they first ran)</h2><div>{legend}</div>
{_comparison_svg(charted, colors)}
</body></html>
"""
