"""The stack's daily spend limit (api.daily_spend_limit_usd): the estimated GPU spend of the jobs that ended on each
UTC day, kept in `daily_spend` (migration 0009), and the 429 `spend_limit_reached` a create gets once today's has
reached the limit.

Every batch that writes a job's metrics row adds, just before it, the change that write makes (the job's cost less what
its metrics row holds; the job itself when it has none yet) to the row of the day it is written on, by the service's
clock (`add_statement`, the one builder): the days' sums are the metrics rows' by construction, whatever deliveries
race. A create reads its day's spend with one primary-key read (`today_statement`). Only creates are refused: jobs in
flight end and are counted, so a day may end over its limit by at most what the jobs in flight at the crossing spend
(api.max_jobs_in_flight of them, each at most its execution timeout's cost). The crossing's batch logs
`spend.limit_reached` once (Transitions).

Each named client's own daily budget (api.client_daily_spend_limit_usd, the same for every client) is kept alike in
`client_daily_spend` (migration 0011), a row a day and client, added in the same batch by `client_add_statement` for a
job a client's token created (a job of the API token's costs no statement more); a create on a client's token reads
its row with the stack's in one statement (`todays_statement`), and at or over the client's limit is refused 429
`client_spend_limit_reached`: one runaway client stops itself, not every client.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.http import ApiError
from service.ports import Statement

DAY_S = 86_400
SPEC_FIELD = "api.daily_spend_limit_usd"
CLIENT_SPEC_FIELD = "api.client_daily_spend_limit_usd"
# Run right before the metrics row's write, on the same condition (the job's last_delivery is the batch's marker): the
# day's row gets the job's cost (as the batch's UPDATE left it) less its metrics row's (a retried job's second attempt
# adds its own cost, on the day RunPod's outcome for it came), and the job when it has no metrics row yet. Computed
# from the rows, not from what the request read: a copy of a delivery whose compare-and-set lost to the copy applied
# first still meets the condition, and its batch rewrites the same metrics row, so it adds 0 here. RETURNING: the
# day's spend after it, for the crossing.
_ADD = ("INSERT INTO daily_spend (day, usd, jobs) "
        "SELECT ?, COALESCE(j.cost_estimate_usd, 0) - COALESCE(m.cost_estimate_usd, 0), m.job_id IS NULL "
        "FROM jobs AS j LEFT JOIN job_metrics AS m ON m.job_id = j.id WHERE j.id = ? AND j.last_delivery = ? "
        "ON CONFLICT (day) DO UPDATE SET usd = usd + excluded.usd, jobs = jobs + excluded.jobs RETURNING usd")
_TODAY = "SELECT usd, jobs FROM daily_spend WHERE day = ?"
# As _ADD, to the row of the job's client: same condition, same change, so a duplicate delivery adds 0 here too. Built
# only for a job read with a client (a job of the API token's has no row and costs no statement).
_CLIENT_ADD = ("INSERT INTO client_daily_spend (day, client, usd, jobs) "
               "SELECT ?, j.client, COALESCE(j.cost_estimate_usd, 0) - COALESCE(m.cost_estimate_usd, 0), "
               "m.job_id IS NULL "
               "FROM jobs AS j LEFT JOIN job_metrics AS m ON m.job_id = j.id "
               "WHERE j.id = ? AND j.last_delivery = ? AND j.client IS NOT NULL "
               "ON CONFLICT (day, client) DO UPDATE SET usd = usd + excluded.usd, jobs = jobs + excluded.jobs "
               "RETURNING usd")
_CLIENT_TODAY = "SELECT usd, jobs FROM client_daily_spend WHERE day = ? AND client = ?"
# The day's row of the stack and of one client, in one statement (always one row: the day's, its sides null when
# nothing ended yet): a client's create makes one round trip however many limits it is judged by.
_TODAYS = ("SELECT s.usd, s.jobs, c.usd AS client_usd, c.jobs AS client_jobs FROM (SELECT ? AS day) AS d "
           "LEFT JOIN daily_spend AS s ON s.day = d.day "
           "LEFT JOIN client_daily_spend AS c ON c.day = d.day AND c.client = ?")
# GET /api/metrics: the clients that spent today, biggest first (a bounded answer whatever the stack's clients).
MAX_CLIENTS_SHOWN = 100
_CLIENTS_TODAY = ("SELECT client, usd, jobs FROM client_daily_spend WHERE day = ? "
                  f"ORDER BY usd DESC, client LIMIT {MAX_CLIENTS_SHOWN}")


def utc_day(now_s: float) -> str:
    """The UTC day of `now_s` as daily_spend keys it: YYYY-MM-DD (the first ten characters of a stored timestamp)."""
    return datetime.fromtimestamp(math.floor(now_s / DAY_S) * DAY_S, UTC).strftime("%Y-%m-%d")


def next_day_s(now_s: float) -> int:
    """The epoch second of the next 00:00 UTC after `now_s`: when a refused day's creates are taken again."""
    return (math.floor(now_s / DAY_S) + 1) * DAY_S


def seconds_until_next_day(now_s: float) -> int:
    """Whole seconds from `now_s` until the next 00:00 UTC, at least 1 (a Retry-After of 0 would be a busy loop)."""
    return max(1, math.ceil(next_day_s(now_s) - now_s))


def add_statement(job_id: str, marker: str, now_s: float) -> Statement:
    """The one statement that adds a job's metrics write to its day's spend: in the batch that writes the metrics row,
    right before it, on its condition (the job's last_delivery is `marker`). Its rows: the day's spend after it, or
    none when the condition does not hold."""
    return Statement(_ADD, (utc_day(now_s), job_id, marker))


def today_statement(now_s: float) -> Statement:
    """The day's row (usd, jobs) of `now_s`: one primary-key read; no row is a day nothing has ended in yet."""
    return Statement(_TODAY, (utc_day(now_s),))


def client_add_statement(job_id: str, marker: str, now_s: float) -> Statement:
    """As add_statement, to the day's row of the job's client (client_daily_spend), right after it in the same batch,
    for a job read with a client. Its rows: the client's day's spend after it, or none when the condition does not
    hold."""
    return Statement(_CLIENT_ADD, (utc_day(now_s), job_id, marker))


def client_today_statement(now_s: float, client: str) -> Statement:
    """The client's row (usd, jobs) of the day of `now_s`: one primary-key read."""
    return Statement(_CLIENT_TODAY, (utc_day(now_s), client))


def todays_statement(now_s: float, client: str) -> Statement:
    """The day's row of the stack and the client's, as one statement (`todays` reads its row)."""
    return Statement(_TODAYS, (utc_day(now_s), client))


def clients_today_statement(now_s: float) -> Statement:
    """The clients with a row today, biggest spend first, at most MAX_CLIENTS_SHOWN (`clients_today` reads them)."""
    return Statement(_CLIENTS_TODAY, (utc_day(now_s),))


@dataclass(frozen=True)
class Today:
    day: str
    usd: float
    jobs: int
    limit_usd: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day, "spend_usd": _usd(self.usd), "jobs": self.jobs, "limit_usd": self.limit_usd}


def today(rows: list[dict[str, Any]], now_s: float, limit_usd: float | None) -> Today:
    """Today's spend from `today_statement`'s rows."""
    row = rows[0] if rows else {}
    return Today(utc_day(now_s), float(row.get("usd") or 0.0), int(row.get("jobs") or 0), limit_usd)


def todays(rows: list[dict[str, Any]], now_s: float, limit_usd: float | None,
           client_limit_usd: float | None) -> tuple[Today, Today]:
    """The stack's and the client's spend today from `todays_statement`'s row."""
    row = rows[0] if rows else {}
    client = {"usd": row.get("client_usd"), "jobs": row.get("client_jobs")}
    return today([row], now_s, limit_usd), today([client], now_s, client_limit_usd)


def clients_today(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`clients_today_statement`'s rows as GET /api/metrics shows them."""
    return [{"client": row["client"], "spend_usd": _usd(row["usd"]), "jobs": int(row["jobs"])} for row in rows]


def dollars(value: float) -> str:
    """An amount as a message shows it: cents from $10 on, else enough digits that a small test limit reads as
    itself ($0.002, not $0.00)."""
    return f"${value:,.2f}" if abs(value) >= 10 else f"${value:.6g}"


def _usd(value: float) -> float:
    """To 12 significant digits, as service.metrics rounds a sum: D1 and SQLite agree to far below a cent."""
    return float(f"{float(value):.12g}")


def crossed(before_usd: float, after_usd: float, limit_usd: float | None) -> bool:
    """Whether the write that took the day's spend from `before_usd` to `after_usd` (the row as its batch read it
    before and after its add) took it from under the limit to at or over it: only that batch knows both totals, so one
    line a day says so (until the limit is raised above the spend)."""
    return limit_usd is not None and before_usd < limit_usd <= after_usd


def client_over(spent: Today) -> bool:
    """Whether a client's spend today is at or over its own limit (none: never)."""
    return spent.limit_usd is not None and spent.usd >= spent.limit_usd


def _reset(now_s: float) -> tuple[int, str]:
    """A refusal's Retry-After (whole seconds until 00:00 UTC) and that time as its message names it."""
    return seconds_until_next_day(now_s), datetime.fromtimestamp(next_day_s(now_s), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def refusal(spent: Today, now_s: float) -> ApiError:
    """The 429 of the API token's create refused for the day's spend, and the message of its line: what was spent, the
    limit, the field to raise, and when the day resets (Retry-After: until then). A client's: client_refusal."""
    wait, resets = _reset(now_s)
    return ApiError(429, "spend_limit_reached",
                    f"the jobs that ended today ({spent.day}, UTC) are estimated at {dollars(spent.usd)}, at or over "
                    f"the stack's daily spend limit of {dollars(spent.limit_usd or 0)} ({SPEC_FIELD}): this job was "
                    f"not created; creates are taken again at {resets} (Retry-After, {wait} s), or once the limit is "
                    "raised; jobs already queued or running go on and are counted",
                    retry_after=str(wait))


def client_refusal(now_s: float) -> ApiError:
    """The 429 a named client's create gets for the day's spend: that the stack's limit is reached and when creates
    are taken again (Retry-After as the operator's), without the amounts or the field to raise: the spend is every
    client's together, and the limit the operator's (the line job.spend_limit_reached keeps both)."""
    wait, resets = _reset(now_s)
    return ApiError(429, "spend_limit_reached",
                    f"the stack's daily spend limit is reached for today ({utc_day(now_s)}, UTC): this job was not "
                    f"created; creates are taken again at {resets} (Retry-After, {wait} s), or once the stack's "
                    "operator raises the limit; your jobs already queued or running go on",
                    retry_after=str(wait))


def own_refusal(client: str, spent: Today, now_s: float) -> ApiError:
    """The 429 of a named client's create refused for its own spend today (api.client_daily_spend_limit_usd): its own
    figures are its to see, so the message names its spend, the limit, and when the day resets (Retry-After: until
    then). Other clients and the API token are served."""
    wait, resets = _reset(now_s)
    return ApiError(429, "client_spend_limit_reached",
                    f"your own daily spend limit is reached: the jobs of client {client} that ended today "
                    f"({spent.day}, UTC) are estimated at {dollars(spent.usd)}, at or over each client's daily spend "
                    f"limit of {dollars(spent.limit_usd or 0)}: this job was not created; creates are taken again at "
                    f"{resets} (Retry-After, {wait} s), or once the stack's operator raises the limit; your jobs "
                    "already queued or running go on",
                    retry_after=str(wait))
