"""RunPod's /health counters as goldgate reads them (goldgate.runpod.jobs.Health): a counter that is no count
(true, a negative number, text) reads 0, and `ready` workers count as up, as `idle` ones do."""

from __future__ import annotations

from goldgate.runpod.jobs import Health


def test_a_counter_that_is_no_count_reads_zero() -> None:
    health = Health.from_wire({"jobs": {"inQueue": True, "inProgress": 3},
                               "workers": {"throttled": True, "unhealthy": -1, "idle": "1", "running": 1}})
    assert (health.in_queue, health.in_progress) == (0, 3)   # JSON true is no job waiting
    assert (health.throttled, health.unhealthy) == (0, 0)
    assert health.up == 1


def test_ready_workers_are_up() -> None:
    assert Health.from_wire({"jobs": {}, "workers": {"ready": 2, "initializing": 1}}).up == 3
