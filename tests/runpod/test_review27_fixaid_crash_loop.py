"""A worker that exits at start again and again (the image has no checkpoint: preflight_failed) is a crash loop.
Before, the emulator dropped each such worker from /health as it exited, so between restarts /health read "no
worker up" or "one initializing" and `goldgate stuck` said "starting" or "busy ... raise endpoint.workers_max",
which only adds workers that fail the same way. RunPod's REST v2 WorkerStatus has UNHEALTHY, "failing health
checks": the emulator now reports a worker that exited before it got ready as UNHEALTHY for a while (until a
worker of the current release gets ready), and `stuck` points to the runbook's first aid, not to workers_max."""

from __future__ import annotations

from goldgate.local.runpod import EmulatorConfig
from goldgate.local.runpod.backend import RunPodBackend, StartWorker
from goldgate.local.runpod.responses import workers as workers_list
from goldgate.ops.stuck import diagnose
from goldgate.runpod.jobs import Health

IMG = "local/worker@sha256:" + "7" * 64
CREATE = {"name": "loop", "type": "QUEUE", "image": IMG, "gpu": {"pools": ["ADA_24"], "count": 1},
          "workers": {"min": 0, "max": 1, "idleTimeout": 5}, "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}}


def _crash_loop() -> tuple[RunPodBackend, str, list[float]]:
    now = [0.0]
    backend = RunPodBackend(EmulatorConfig(api_key="k"), clock=lambda: now[0])
    ep = backend.create_endpoint(CREATE).id
    backend.submit(ep, {"input": {"prompt": "x"}}, 10)
    return backend, ep, now


def _start(backend: RunPodBackend) -> StartWorker:
    [start] = [a for a in backend.plan() if isinstance(a, StartWorker)]
    return start


def _diagnosis(backend: RunPodBackend, ep: str) -> tuple[str, str]:
    health = Health.from_wire(backend.health(ep))
    cause, lines = diagnose(health, workers_max=1, gpu_pools=["ADA_24"], stack="staging", target="local")
    return cause, " ".join(lines)


def test_a_worker_that_exits_at_start_is_reported_unhealthy_and_stuck_points_to_the_first_aid():
    backend, ep, now = _crash_loop()
    first = _start(backend)
    now[0] = 2.0
    backend.worker_exited(first.worker_id, 1)  # it never asked for a job: its preflight failed
    health = backend.health(ep)
    assert health["workers"]["unhealthy"] == 1 and health["jobs"]["inQueue"] == 1
    listed = workers_list(backend, backend.endpoint(ep), "NVIDIA GeForce RTX 4090")
    assert [w["status"] for w in listed["workers"]] == ["UNHEALTHY"]
    assert listed["summary"]["unhealthy"] == listed["summary"]["total"] == 1
    cause, text = _diagnosis(backend, ep)
    assert cause == "workers_unhealthy", text
    assert "No checkpoint models appear to be available" in text and "goldgate status staging" in text
    assert "raise endpoint.workers_max" not in text

    now[0] = 8.0  # past the emulator's pause after a death at boot: the restart initializes
    _start(backend)
    cause, text = _diagnosis(backend, ep)
    assert cause == "workers_unhealthy", text  # before: "busy ... raise endpoint.workers_max"
    assert "raise endpoint.workers_max" not in text


def test_the_unhealthy_report_ends_when_a_worker_gets_ready_or_after_a_while():
    backend, ep, now = _crash_loop()
    backend.worker_exited(_start(backend).worker_id, 1)
    now[0] = 8.0
    fixed = _start(backend)
    backend.take(ep, fixed.worker_id, 1, 0.0)  # it got ready (and took the job): the loop is over
    assert backend.health(ep)["workers"]["unhealthy"] == 0

    backend, ep, now = _crash_loop()
    backend.worker_exited(_start(backend).worker_id, 1)
    now[0] = 1_000.0
    assert backend.health(ep)["workers"]["unhealthy"] == 0


def test_a_worker_stopped_on_purpose_or_dying_after_it_got_ready_is_not_unhealthy():
    backend, ep, _ = _crash_loop()
    start = _start(backend)
    backend.take(ep, start.worker_id, 1, 0.0)
    backend.worker_exited(start.worker_id, -9)  # a crash mid-job: its job is requeued, not a failed start
    assert backend.health(ep)["workers"]["unhealthy"] == 0
