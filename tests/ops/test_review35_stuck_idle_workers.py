"""`goldgate stuck`'s reading of RunPod's /health: jobs IN_QUEUE while workers sit idle is a queue draining (each
worker asks for its next job about once a second under the runpod SDK's loop), not a shortage of workers, so it does
not advise raising endpoint.workers_max; with no worker idle it still does. Seen in an on-call drill: a looping
client's 11 queued jobs "behind 1 running, 2 idle" were met with "raise endpoint.workers_max"."""

from __future__ import annotations

from goldgate.ops import stuck
from goldgate.runpod.jobs import Health


def _health(queued: int, **workers: int) -> Health:
    counts = {"idle": 0, "initializing": 0, "running": 0, "throttled": 0, "unhealthy": 0, **workers}
    return Health(jobs={"completed": 0, "failed": 0, "inProgress": workers.get("running", 0), "inQueue": queued,
                        "retried": 0}, workers=counts)


def _diagnose(health: Health, target: str = "local") -> tuple[str, list[str]]:
    return stuck.diagnose(health, workers_max=3, gpu_pools=("ADA_24",), stack="prod", target=target)


def test_a_queue_behind_idle_workers_is_draining_and_more_workers_are_not_the_advice():
    for target, stack_file in (("local", "stacks/local.yaml"), ("cloud", "stacks/Pulumi.prod.yaml")):
        cause, lines = _diagnose(_health(11, running=1, idle=2), target)
        assert cause == "busy"
        assert lines[0].startswith("11 jobs IN_QUEUE behind 1 running, 2 idle and 0 initializing workers (max "
                                   "workers 3): an idle worker takes a queued job within about a second"), lines[0]
        assert "so this queue is draining" in lines[0]
        assert "raise endpoint.workers_max" not in lines[0]
        assert f"(endpoint.workers_max in {stack_file}) help only if jobs still wait while no worker is idle" \
            in lines[0]


def test_a_queue_with_no_worker_idle_still_advises_more_workers():
    cause, lines = _diagnose(_health(4, running=3))
    assert cause == "busy"
    assert "the endpoint is busy and jobs wait their turn; raise endpoint.workers_max in stacks/local.yaml" in lines[0]


def test_a_long_queue_behind_idle_workers_still_points_at_a_runaway_client():
    cause, lines = _diagnose(_health(200, running=1, idle=2))
    assert cause == "busy" and "so this queue is draining" in lines[0]
    assert any("A runaway client: stop the spend" in line for line in lines[1:]), lines
