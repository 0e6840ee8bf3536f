"""Gaps a mutation audit of goldgate/release/spend_limit.py found in the spend check a promotion, a rollback and a
release make before they change anything: a stack whose service has no limit (`limit_usd` null) is never refused
whatever it spent; a `daily_spend` that is not the service's report (a number that is text, true or null) is said in
one warning line and does not refuse; the refusal shows the spend and the limit apart, the day as a day and no
`true` job count; and an answer that is not 200 (the real service's 401 to a token it does not take) is said as
that answer, never read as a report with no limit in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import test_golden_idempotent_create as live
from test_promotion_evidence import Target
from test_review34_spendrel_live import LiveStacks, _spent_today, stack  # noqa: F401 (stack: a fixture)
from test_review34_spendrel_promotion import AT_LIMIT, spend_api

from goldgate.release.golden import ApiAccess
from goldgate.release.spend_limit import spend_limit_refusal


def _check(deployer: Any) -> tuple[str | None, list[str]]:
    lines: list[str] = []
    why = spend_limit_refusal(deployer, "prod", lines.append, doing="promote to prod",
                              because="its smoke run could not run")
    return why, lines


def test_a_stack_with_no_limit_is_not_refused_whatever_it_spent() -> None:
    with spend_api(daily_spend={"day": "2026-12-02", "spend_usd": 812.5, "jobs": 940, "limit_usd": None}) as api:
        assert _check(Target(api, {})) == (None, [])


@pytest.mark.parametrize("daily_spend", [
    {**AT_LIMIT, "spend_usd": "0.5"},
    {**AT_LIMIT, "spend_usd": True},
    {**AT_LIMIT, "spend_usd": None},
    {**AT_LIMIT, "limit_usd": "0.5"},
])
def test_a_daily_spend_that_is_not_the_services_report_is_warned_about_and_refuses_nothing(daily_spend) -> None:
    with spend_api(daily_spend=daily_spend) as api:
        why, lines = _check(Target(api, {}))
    assert why is None
    assert lines == [("warning: could not read prod's daily spend (GET /api/metrics: its daily_spend is not {day, "
                      "spend_usd, jobs, limit_usd}); going on without checking its api.daily_spend_limit_usd")], lines


def test_the_refusal_shows_the_day_alone_and_no_true_job_count() -> None:
    with spend_api(daily_spend={**AT_LIMIT, "day": "2026-12-02T23:59:59Z", "jobs": True}) as api:
        why, _ = _check(Target(api, {}))
    assert why is not None and "($0.5 estimated for the 0 job(s) that ended today, 2026-12-02 UTC;" in why, why


class _WrongToken(LiveStacks):
    def api_access(self, name: str) -> ApiAccess:
        return ApiAccess(self.api_url, "not-the-stacks-api-token-" + "x" * 20)


def test_a_metrics_read_the_service_answers_401_is_said_as_such_and_refuses_nothing(
        stack: live.Stack, tmp_path: Path) -> None:  # noqa: F811
    _spent_today(stack, 0.5, 2)  # at the limit: only a read that cannot be made lets the step go on
    why, lines = _check(_WrongToken(stack.url, {"prod": live.IMAGE}))
    assert why is None and len(lines) == 1, lines
    assert lines[0].startswith("warning: could not read prod's daily spend (GET /api/metrics: it answered 401: "), lines
    assert LiveStacks(stack.url, {"prod": live.IMAGE}).api_access("prod").token not in lines[0]
    assert _check(LiveStacks(stack.url, {"prod": live.IMAGE}))[0] is not None  # its own token reads it: refused


def test_the_refusal_of_a_stack_over_its_limit_shows_the_spend_and_the_limit_apart() -> None:
    with spend_api(daily_spend={**AT_LIMIT, "spend_usd": 0.62, "jobs": 4}) as api:
        why, _ = _check(Target(api, {}))
    assert why is not None and "($0.62 estimated for the 4 job(s)" in why, why
    assert "api.daily_spend_limit_usd is $0.5), so it refuses every create until 00:00 UTC" in why, why
