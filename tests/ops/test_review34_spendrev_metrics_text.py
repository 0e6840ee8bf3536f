"""`goldgate metrics`'s first line gives today's spend and the daily spend limit as the 429's message does
(service.spend.dollars): an amount under $10 with the digits it has, so a local stack's fractions of a cent and a small
limit read as themselves, not "spend $0.00 ... daily spend limit $0.00: REACHED"; from $10 on, in cents."""

from __future__ import annotations

import pytest

from goldgate.ops.metrics_report import daily_spend_line


@pytest.mark.parametrize(("spend", "limit", "shown"), [
    (0.00186, 0.004, "spend $0.00186 over 6 jobs ended, daily spend limit $0.004 (api.daily_spend_limit_usd)"),
    (0.0062, 0.005, "spend $0.0062 over 6 jobs ended, daily spend limit $0.005 (api.daily_spend_limit_usd): REACHED"),
    (251.5, 250.0, "spend $251.50 over 6 jobs ended, daily spend limit $250.00 (api.daily_spend_limit_usd): REACHED"),
])
def test_the_line_shows_small_amounts_as_themselves(spend: float, limit: float, shown: str) -> None:
    report = {"daily_spend": {"day": "2027-01-15", "spend_usd": spend, "jobs": 6, "limit_usd": limit}}
    line = daily_spend_line(report)
    assert line.startswith("today (2027-01-15 UTC): " + shown), line
