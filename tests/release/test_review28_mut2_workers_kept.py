"""What a redeploy that made no new release says of the stack's workers: how many warm ones stay, or, with none
running, that none runs (not "its 0 warm worker(s) stay")."""

from __future__ import annotations

from goldgate.release.deployers.base import workers_kept


def test_a_redeploy_says_how_many_warm_workers_stay_or_that_none_runs() -> None:
    two = workers_kept("staging", "rel-1", 2, "fresh ones start later")
    assert "release rel-1 stays), so its 2 warm worker(s) stay: " in two and two.endswith("; fresh ones start later")
    none = workers_kept("staging", "rel-1", 0, "fresh ones start later")
    assert "so no worker runs now: " in none and "warm worker" not in none, none
