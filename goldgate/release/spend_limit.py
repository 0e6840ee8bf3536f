"""A stack's daily spend limit (api.daily_spend_limit_usd) as a release step meets it: a stack at its limit refuses
every create until 00:00 UTC, so a golden or smoke run there judges nothing. Read before a promotion, a rollback or a
release changes anything, from the stack's own GET /api/metrics (the limit its running service enforces)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from goldgate.errors import GoldgateError, describe
from goldgate.release.deployers.base import Deployer, Progress
from goldgate.release.golden import (
    SPEND_LIMIT_ADVICE,
    answer_json,
    api_client,
    api_error_text,
    bounded_answer,
)
from service.spend import dollars

METRICS_READ_S = 15.0  # how long the read of GET /api/metrics may take: a check, never a reason to wait long


class AtSpendLimit(GoldgateError):
    """The stack a step would run golden or smoke cases on is at its daily spend limit: refused before anything was
    built, deployed or recorded (as a stack that is not up, or not as declared)."""


@dataclass(frozen=True)
class DailySpend:
    """Today's spend as the stack's service judges its creates by it (GET /api/metrics' `daily_spend`)."""

    day: str
    spend_usd: float
    jobs: int
    limit_usd: float | None

    @property
    def reached(self) -> bool:
        return self.limit_usd is not None and self.spend_usd >= self.limit_usd


class SpendUnread(GoldgateError):
    """GET /api/metrics could not be read, or answered without a readable `daily_spend`."""


def read_daily_spend(deployer: Deployer, stack: str) -> DailySpend | None:
    """`stack`'s daily spend, or None when its service has no such report (a service from before the limit). Raises
    SpendUnread when the answer cannot be had or read. The API is reached as the golden runner reaches it
    (`deployer.api_access`: the local stack's host, or the cloud stack's `api_url` output and API token)."""
    try:
        access = deployer.api_access(stack)
        # `since` now: the report's other groups cover no job, so the read is the day's one row, not a scan of every
        # job's metrics (`daily_spend` is today's whatever `since` is).
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with api_client(access) as client:
            resp = bounded_answer(client, "GET", "/api/metrics", time.monotonic() + METRICS_READ_S, METRICS_READ_S,
                           params={"since": since})
    except Exception as exc:  # noqa: BLE001 -- a check that cannot be made is said and skipped, never fatal
        raise SpendUnread((describe(exc).splitlines() or [type(exc).__name__])[0][:300]) from None
    if resp.status_code != 200:
        raise SpendUnread(f"it answered {resp.status_code}: {api_error_text(resp)}")
    try:
        report = answer_json(resp)
    except GoldgateError as exc:
        raise SpendUnread(str(exc)) from None
    if "daily_spend" not in report:
        return None
    return _daily_spend(report["daily_spend"])


def _daily_spend(value: Any) -> DailySpend:
    number = (int, float)
    if not isinstance(value, dict) or isinstance(value.get("spend_usd"), bool) \
            or not isinstance(value.get("spend_usd"), number) \
            or not (value.get("limit_usd") is None or isinstance(value.get("limit_usd"), number)):
        raise SpendUnread("its daily_spend is not {day, spend_usd, jobs, limit_usd}")
    jobs = value.get("jobs")
    return DailySpend(day=str(value.get("day"))[:10], spend_usd=float(value["spend_usd"]),
                      jobs=jobs if isinstance(jobs, int) and not isinstance(jobs, bool) else 0,
                      limit_usd=None if value.get("limit_usd") is None else float(value["limit_usd"]))


def spend_limit_refusal(deployer: Deployer, stack: str, progress: Progress, *, doing: str,
                        because: str) -> str | None:
    """Why `doing` is refused now, in one line, when `stack` is at or over its daily spend limit; None when it is
    under it, has none, or its service reports no daily spend. `because`: what the limit would cost the step ("its
    smoke run could not run ..."). A read that fails is said on `progress`, in one line, and does not refuse: a
    check that cannot be made must not stop a release the stack might well run."""
    try:
        spent = read_daily_spend(deployer, stack)
    except SpendUnread as exc:
        progress(f"warning: could not read {stack}'s daily spend (GET /api/metrics: {exc}); going on without "
                 "checking its api.daily_spend_limit_usd")
        return None
    if spent is None or not spent.reached:
        return None
    return (f"cannot {doing}: {stack} is at its daily spend limit ({dollars(spent.spend_usd)} estimated for the "
            f"{spent.jobs} job(s) that ended today, {spent.day} UTC; api.daily_spend_limit_usd is "
            f"{dollars(spent.limit_usd or 0.0)}), so it refuses every create until 00:00 UTC and {because}; nothing "
            f"was changed or recorded: {SPEND_LIMIT_ADVICE}")


def check_within_spend_limit(deployer: Deployer, stack: str, progress: Progress, *, doing: str,
                             because: str) -> None:
    """Raise AtSpendLimit with `spend_limit_refusal`'s line when `stack` is at its daily spend limit."""
    why = spend_limit_refusal(deployer, stack, progress, doing=doing, because=because)
    if why is not None:
        raise AtSpendLimit(why)
