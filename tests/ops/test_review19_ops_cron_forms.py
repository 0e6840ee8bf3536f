"""Two cron forms a stack's database.retention may use, placed in time as Cloudflare places them: `a/n` starts at
a and steps by n to the end of the field, and `nL` is the month's last such weekday, not one a week before it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from goldgate.local.retention_cron import CronSchedule


@pytest.mark.parametrize(("cron", "after", "then"), [
    ("5/15 * * * *", datetime(2026, 12, 1, 0, 6, tzinfo=UTC),
     ["2026-12-01 00:20", "2026-12-01 00:35", "2026-12-01 00:50", "2026-12-01 01:05"]),
    ("0 3/6 * * *", datetime(2026, 12, 1, 4, 0, tzinfo=UTC), ["2026-12-01 09:00", "2026-12-01 15:00"]),
    # December 2026: Thursdays (Cloudflare's 5) fall on the 24th and the 31st; the last is the 31st
    ("0 18 * * 5L", datetime(2026, 12, 20, tzinfo=UTC), ["2026-12-31 18:00", "2027-01-28 18:00"]),
])
def test_the_schedule_fires_when_cloudflare_would(cron: str, after: datetime, then: list[str]) -> None:
    schedule = CronSchedule.parse(cron)
    times, at = [], after
    for _ in then:
        at = schedule.next_after(at)
        times.append(at.strftime("%Y-%m-%d %H:%M"))
    assert times == then
