"""`goldgate stuck` during a cold start (every worker up is still INITIALIZING): the workers are starting, not an
endpoint busy with jobs; raising endpoint.workers_max would only add more workers that start as slowly."""

from __future__ import annotations

from goldgate.ops import stuck
from goldgate.runpod.jobs import Health


def test_three_of_three_workers_initializing_is_a_cold_start_not_a_busy_endpoint():
    health = Health(jobs={"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 4, "retried": 0},
                    workers={"idle": 0, "initializing": 3, "running": 0, "throttled": 0, "unhealthy": 0})
    cause, lines = stuck.diagnose(health, workers_max=3, gpu_pools=("ADA_24",), stack="staging", target="local")
    text = " ".join(lines)
    assert cause == "starting", lines
    assert "cold start" in text and "busy" not in text and "raise endpoint.workers_max" not in text, lines
