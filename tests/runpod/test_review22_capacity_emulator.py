"""The RunPod emulator models RunPod's two reasons jobs sit IN_QUEUE with workers allocated: no GPU capacity
in the endpoint's pools (workers THROTTLED) and workers that fail at start (UNHEALTHY). Before, /health always
answered throttled 0 and unhealthy 0, so nothing that reads it could be tried against either case.

REST v2's WorkerStatus: THROTTLED "waiting on compute capacity", UNHEALTHY "failing health checks"; its
WorkerSummary is a roll-up of the workers array (running + idle + initializing + throttled + unhealthy ==
total)."""

from __future__ import annotations

import time

import pytest
from emulator_harness import wait_for

from goldgate.errors import SpecError
from goldgate.local.runpod.config import config_from_mapping


def _workers(health) -> dict[str, int]:
    return dict(health.workers)


@pytest.mark.parametrize(("switch", "state"), [("no_gpu_capacity", "throttled"),
                                               ("workers_fail_at_start", "unhealthy")])
def test_a_held_worker_is_counted_and_its_job_stays_queued_until_the_switch_is_off(make_stack, switch, state):
    stack = make_stack(**{switch: True})
    ep = stack.endpoint(workers_max=2)
    with stack.jobs(ep.id) as jobs:
        job = jobs.run({"echo": "held"})
        wait_for(lambda: jobs.health().workers.get(state), f"a {state} worker in /health")
        health = jobs.health()
        none = {"idle": 0, "initializing": 0, "running": 0, "throttled": 0, "unhealthy": 0}
        assert _workers(health) == {**none, state: 1}
        assert health.jobs["inQueue"] == 1 and health.jobs["inProgress"] == 0
        listed = stack.control.list_workers(ep.id)
        assert [w.status for w in listed.workers] == [state.upper()]
        assert (listed.summary[state], listed.summary["total"]) == (1, 1)
        time.sleep(1.0)  # a held worker runs nothing: the job is still queued a while later
        assert jobs.status(job.id).status == "IN_QUEUE"
        assert jobs.health().workers[state] == 1  # one worker for one job: not a new one every plan

        with stack.emulator.backend.lock:
            setattr(stack.emulator.backend, switch, False)
        done = stack.finished(jobs, job.id)
        assert done.status == "COMPLETED", done
        assert jobs.health().workers[state] == 0


def test_the_workers_summary_counts_held_workers_as_runpod_does(make_stack):
    stack = make_stack(no_gpu_capacity=True)
    ep = stack.endpoint(workers_max=3)
    with stack.jobs(ep.id) as jobs:
        for n in range(2):
            jobs.run({"echo": n})
        wait_for(lambda: jobs.health().workers.get("throttled") == 2, "two throttled workers")
    assert dict(stack.control.list_workers(ep.id).summary) == {"running": 0, "idle": 0, "initializing": 0,
                                                               "throttled": 2, "unhealthy": 0, "total": 2}


def test_a_held_worker_no_demand_needs_is_let_go(make_stack):
    stack = make_stack(workers_fail_at_start=True)
    ep = stack.endpoint(workers_max=2)
    with stack.jobs(ep.id) as jobs:
        jobs.run({"echo": "gone"})
        wait_for(lambda: jobs.health().workers.get("unhealthy") == 1, "an unhealthy worker")
        assert jobs.purge_queue() == 1
        wait_for(lambda: jobs.health().workers.get("unhealthy") == 0, "the unhealthy worker let go")
    assert stack.control.list_workers(ep.id).workers == ()


def test_the_switches_come_from_the_config_file_too() -> None:
    config = config_from_mapping({"no_gpu_capacity": True, "workers_fail_at_start": False})
    assert (config.no_gpu_capacity, config.workers_fail_at_start) == (True, False)
    with pytest.raises(SpecError, match="no_gpu_capacity must be true or false"):
        config_from_mapping({"no_gpu_capacity": "yes"})
