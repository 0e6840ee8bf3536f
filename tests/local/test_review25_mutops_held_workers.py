"""The RunPod emulator's held workers (its test switches no_gpu_capacity and workers_fail_at_start), in process
on its backend: which state a new worker is held in, that a held one follows the switches, and that one which
never ran is let go, never "stopped", when its endpoint goes or a new release replaces it. The emulator tests
(test_review22_capacity_emulator.py) hold the counters and the start once a switch is off."""

from __future__ import annotations

from goldgate.local.runpod import EmulatorConfig
from goldgate.local.runpod.backend import RunPodBackend, StartWorker, StopWorker

IMG = "local/worker@sha256:" + "5" * 64
CREATE = {"name": "held", "type": "QUEUE", "image": IMG, "gpu": {"pools": ["ADA_24"], "count": 1},
          "workers": {"min": 1, "max": 2, "idleTimeout": 5}, "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}}


def _held(**switches: bool) -> tuple[RunPodBackend, str]:
    """A backend whose endpoint (workers.min 1) has one worker, held by `switches`."""
    backend = RunPodBackend(EmulatorConfig(api_key="k", **switches))
    ep = backend.create_endpoint(CREATE)
    assert backend.plan() == []  # allocated, not started
    return backend, ep.id


def _statuses(backend: RunPodBackend, endpoint_id: str) -> list[tuple[int, str]]:
    return [(w.version, w.status) for w in backend.live_workers(endpoint_id)]


def test_a_worker_both_switches_hold_is_unhealthy():
    backend, ep = _held(no_gpu_capacity=True, workers_fail_at_start=True)
    assert _statuses(backend, ep) == [(1, "UNHEALTHY")]


def test_a_held_worker_follows_a_switch_flipped_while_it_waits():
    backend, ep = _held(no_gpu_capacity=True)
    assert _statuses(backend, ep) == [(1, "THROTTLED")]
    with backend.lock:
        backend.no_gpu_capacity, backend.workers_fail_at_start = False, True
    assert backend.plan() == []
    assert _statuses(backend, ep) == [(1, "UNHEALTHY")]
    with backend.lock:
        backend.workers_fail_at_start = False
    [start] = backend.plan()
    [worker] = backend.live_workers(ep)
    assert isinstance(start, StartWorker) and start.worker_id == worker.id and worker.status == "INITIALIZING"


def test_deleting_the_endpoint_stops_no_held_worker_it_simply_lets_it_go():
    backend, ep = _held(no_gpu_capacity=True)
    assert backend.delete_endpoint(ep) == []  # no process ran: a stop would name a worker that never started
    assert backend.workers == {}


def test_a_held_worker_of_an_older_release_is_let_go_not_stopped():
    backend, ep = _held(workers_fail_at_start=True)
    backend.update_endpoint(ep, {"image": "local/worker@sha256:" + "6" * 64})
    actions = backend.plan()
    assert not any(isinstance(a, StopWorker) for a in actions), actions
    assert _statuses(backend, ep) == [(2, "UNHEALTHY")]


def test_a_held_workers_cold_start_counts_from_its_start_not_from_the_wait_before_it():
    now = [0.0]
    events: list[tuple[str, dict]] = []
    backend = RunPodBackend(EmulatorConfig(api_key="k", no_gpu_capacity=True), clock=lambda: now[0],
                            on_event=lambda event, **fields: events.append((event, fields)))
    ep = backend.create_endpoint(CREATE).id
    assert backend.plan() == []
    now[0] = 600.0  # ten minutes without capacity
    with backend.lock:
        backend.no_gpu_capacity = False
    [start] = backend.plan()
    now[0] = 605.0
    backend.take(ep, start.worker_id, 1, 0.0)  # the worker's first call: it is ready
    assert [f["cold_start_ms"] for e, f in events if e == "worker.ready"] == [5_000]
