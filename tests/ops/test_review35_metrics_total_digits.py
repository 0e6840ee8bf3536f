"""`goldgate metrics`' first line shows the window's spend as the "today" line beside it shows the day's: in cents
from $10, else to its own digits. It printed `spend $0.00` next to `today (...): spend $0.00093`, as an on-call drill
on a small local stack found."""

from __future__ import annotations

import pytest

from goldgate.ops.metrics_report import summary


def _overall(cost: float | None) -> dict:
    return {"overall": {"count": 3, "completed": 3, "errors": 0, "cancelled": 0, "cost_total_usd": cost,
                        "error_rate": 0.0}, "error_rate_threshold": 0.05}


@pytest.mark.parametrize(("cost", "shown"), [(0.00093, "spend $0.00093;"), (12.345, "spend $12.35;"),
                                             (2612.5, "spend $2,612.50;"), (None, "spend -;")])
def test_the_first_line_shows_a_small_spend_as_itself_and_a_large_one_in_cents(cost: float | None,
                                                                               shown: str) -> None:
    assert shown in summary(_overall(cost))
