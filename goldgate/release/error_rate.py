"""STAGING's error rate for the gate: failed / terminal jobs in `job_metrics` since a moment.
Local target: the stack's SQLite "D1" read-only. Cloud: the service's `GET /api/metrics?since=`,
which computes the same figure from D1 (the orchestrator holds no D1 credentials in the gate)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from goldgate.bounded_http import DeadlinePassed, ResponseTooLarge, send_bounded, tls_context
from goldgate.errors import GoldgateError
from goldgate.ops.fingerprint import connect_read_only
from goldgate.release.gate import ErrorRate

# The service's definition (service/metrics.py): a cancelled job is not the image's fault.
ERROR_STATUSES = ("failed", "timed_out")
# A safety net on the rows counted since `since` (the window of one deployed image holds far fewer): a huge
# window cannot stall the gate; the newest rows matter.
_MAX_ROWS = 500_000
# The metrics answer is a few hundred bytes per image tag ever served: far below this. Anything longer (a proxy's
# page, a body without end) is not read into memory whole.
_MAX_ANSWER_BYTES = 4 * 1024 * 1024
# The whole answer, not each read (httpx's timeout): one trickled a byte at a time would hold the release lock.
_ANSWER_DEADLINE_S = 120.0


def from_sqlite(db_path: Path, stack: str, since: datetime) -> ErrorRate:
    """Count terminal jobs and failures for `stack` created at or after `since`: only the rows since `since` are read
    (over the created_at index), whatever the age of the table."""
    if not Path(db_path).is_file():
        raise GoldgateError(f"the stack database {db_path} does not exist; is the stack up?")
    try:
        conn = connect_read_only(Path(db_path), timeout=10)
    except sqlite3.Error as exc:
        raise GoldgateError(f"cannot open {db_path} read-only: {exc}") from None
    try:
        jobs, failed = conn.execute(_STORED_SINCE, (_stored(since), stack, _MAX_ROWS)).fetchone()
        # A time in another form (an offset, no milliseconds: a row the service did not write) is parsed, as
        # before; its text may sort up to a day before its UTC time, hence the wider range.
        others = conn.execute(_OTHER_FORMS_SINCE, (_day_before(since), stack, _MAX_ROWS)).fetchall()
    except sqlite3.Error as exc:
        raise GoldgateError(f"cannot read job_metrics from {db_path}: {exc}") from None
    finally:
        conn.close()
    failed = failed or 0
    for status, created in others:
        when = _when(created)
        if when is None or when < _utc(since):
            continue
        jobs += 1
        if str(status).lower() in ERROR_STATUSES:
            failed += 1
    return ErrorRate(jobs=jobs, failed=failed, since=_iso(since))


# created_at as the service stores it: UTC to the millisecond, whose text order is time order, so the rows since
# `since` are a range of the created_at index, counted in SQL. The newest _MAX_ROWS rows at most, of each form.
_STORED = "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'"
_STORED_SINCE = (
    "SELECT count(*), sum(lower(status) IN ({})) FROM (SELECT status FROM job_metrics "
    f"WHERE created_at >= ? AND created_at GLOB {_STORED} AND stack = ? ORDER BY created_at DESC LIMIT ?)"
).format(", ".join(f"'{status}'" for status in ERROR_STATUSES))
_OTHER_FORMS_SINCE = ("SELECT status, created_at FROM job_metrics "
                      f"WHERE created_at >= ? AND NOT created_at GLOB {_STORED} AND stack = ? "
                      "ORDER BY created_at DESC LIMIT ?")


def _stored(since: datetime) -> str:
    """`since` as the service stores created_at, rounded up to the millisecond (a row at .000 is before .0005)."""
    when = _utc(since)
    if when.microsecond % 1000:
        try:
            when += timedelta(microseconds=1000 - when.microsecond % 1000)
        except OverflowError:  # past 9999-12-31T23:59:59.999Z: no row can be that late
            when = datetime.max.replace(tzinfo=UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _day_before(since: datetime) -> str:
    try:
        return (_utc(since) - timedelta(days=1)).date().isoformat()
    except OverflowError:  # since is in the year 1: every row is later
        return ""


def _utc(when: datetime) -> datetime:
    """A time without a zone (a ledger line written by hand) is UTC, as the service stores created_at."""
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def from_api(api_url: str, token: str, since: datetime) -> ErrorRate:
    """The service's own metrics endpoint (cloud target)."""
    try:
        with httpx.Client(timeout=30, verify=tls_context()) as client:
            request = client.build_request("GET", f"{api_url.rstrip('/')}/api/metrics", params={"since": _iso(since)},
                                           headers={"authorization": f"Bearer {token}"})
            resp, content = send_bounded(client, request, _MAX_ANSWER_BYTES, _ANSWER_DEADLINE_S)
    except DeadlinePassed as exc:
        raise GoldgateError(f"{api_url}/api/metrics did not answer in full within {exc.deadline_s:g} s; the gate "
                            "cannot judge STAGING's error rate: retry once the API answers") from None
    except ResponseTooLarge as exc:
        raise GoldgateError(f"{api_url}/api/metrics answered {exc.status} with more than {_MAX_ANSWER_BYTES} bytes; "
                            "is the URL the service's?") from None
    except httpx.HTTPError as exc:
        raise GoldgateError(f"cannot read STAGING metrics from {api_url}: {exc}") from None
    if resp.status_code != 200:
        raise GoldgateError(f"{api_url}/api/metrics answered {resp.status_code}")
    try:
        body: Any = json.loads(content)
        overall = body.get("overall", body)
        jobs = int(overall["count"])
        errors = int(overall.get("errors") if overall.get("errors") is not None
                     else round(float(overall.get("error_rate") or 0.0) * jobs))
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError):  # 1e400 is infinity
        raise GoldgateError(f"{api_url}/api/metrics answered without `overall.count` and `errors`") from None
    if not 0 <= errors <= jobs:  # 7 errors in 0 jobs would read as a 0% error rate
        raise GoldgateError(f"{api_url}/api/metrics answered {errors} errors in {jobs} jobs, which cannot be")
    return ErrorRate(jobs=jobs, failed=errors, since=_iso(since))


def _when(value: Any) -> datetime | None:
    """created_at as written by the service: ISO 8601 text, or epoch seconds / milliseconds."""
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 10**11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
