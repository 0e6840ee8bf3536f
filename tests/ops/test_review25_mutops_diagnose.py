"""`goldgate stuck`'s reading of an endpoint's /health (stuck.diagnose), cause by cause, in process: the
emulator tests (test_review22_capacity_stuck.py) reach the no-capacity, unhealthy-while-queued and busy causes
only; these hold the others, the order they are told in, and when the text shows the reason at all."""

from __future__ import annotations

from typing import Any

import pytest

from goldgate.errors import GoldgateError
from goldgate.ops import stuck
from goldgate.runpod.jobs import Health
from goldgate.spec import load_local


def _health(queued: int = 0, in_progress: int = 0, **workers: int) -> Health:
    counts = {"idle": 0, "initializing": 0, "running": 0, "throttled": 0, "unhealthy": 0, **workers}
    jobs = {"completed": 0, "failed": 0, "inProgress": in_progress, "inQueue": queued, "retried": 0}
    return Health(jobs=jobs, workers=counts)


def _diagnose(health: Health, workers_max: int | None = 2, pools: tuple[str, ...] = ("ADA_24",),
              target: str = "local") -> tuple[str, list[str]]:
    return stuck.diagnose(health, workers_max=workers_max, gpu_pools=pools, stack="staging", target=target)


def test_max_workers_0_with_nothing_queued_and_no_worker_up_is_still_named():
    # RunPod set it to 0 after a quiet week: the next job will wait, so it is named before one does.
    cause, lines = _diagnose(_health(), workers_max=0)
    assert cause == "max_workers_zero"
    assert "`goldgate down staging && goldgate up staging` restores" in lines[0]


def test_max_workers_0_while_workers_are_still_up_and_nothing_queued_is_no_cause():
    cause, _ = _diagnose(_health(idle=1), workers_max=0)
    assert cause == "none_queued"


def test_unhealthy_workers_with_none_up_are_named_even_before_a_job_queues():
    cause, lines = _diagnose(_health(unhealthy=1))
    assert cause == "workers_unhealthy"
    assert lines[0] == ("1 worker unhealthy and 0 up: workers fail at start, so 0 jobs IN_QUEUE wait for one "
                        "that never comes")


def test_unhealthy_workers_name_the_throttled_ones_and_count_in_the_plural():
    cause, lines = _diagnose(_health(queued=3, unhealthy=2, throttled=1))
    assert cause == "workers_unhealthy"
    assert lines[0].startswith("2 workers unhealthy (1 more throttled) and 0 up: workers fail at start, "
                               "so 3 jobs IN_QUEUE wait"), lines


def test_throttled_workers_beside_one_up_are_a_busy_endpoint_not_a_capacity_fault():
    cause, lines = _diagnose(_health(queued=1, running=1, throttled=1))
    assert cause == "busy"
    assert lines[0].startswith("1 job IN_QUEUE behind 1 running, 0 idle and 0 initializing workers (max workers 2)")
    assert lines[1].startswith("1 more throttled (no GPU free in ADA_24), 0 unhealthy")


def test_jobs_queued_and_no_worker_at_all_is_a_cold_start():
    cause, lines = _diagnose(_health(queued=2))
    assert cause == "starting"
    assert lines[0].startswith("2 jobs IN_QUEUE and no worker up, none throttled or unhealthy (max workers 2): "
                               "RunPod has yet to start one")


def test_unhealthy_workers_beside_one_up_with_nothing_queued_are_still_named():
    cause, lines = _diagnose(_health(idle=1, unhealthy=1))
    assert cause == "workers_unhealthy"
    assert lines[0].startswith("1 worker unhealthy (failing at start): check the worker logs")


def test_jobs_in_progress_and_nothing_queued_says_a_listed_job_may_still_run():
    cause, lines = _diagnose(_health(in_progress=2, running=2))
    assert cause == "running"
    assert lines[0].startswith("nothing queued, 2 jobs in progress")


def test_an_endpoint_without_pools_says_none_and_the_cloud_form_applies_with_pulumi():
    cause, lines = _diagnose(_health(queued=1, throttled=1), pools=(), target="cloud")
    assert cause == "no_gpu_capacity"
    assert "no GPU free in the endpoint's pools (none)" in lines[0]
    assert "in stacks/Pulumi.staging.yaml and apply it (`pulumi up --stack staging`)" in lines[1]


def test_a_runpod_that_cannot_be_read_is_a_note_naming_why():
    spec = load_local("staging")

    def read() -> Any:
        raise GoldgateError("RunPod answered 401: the key is not valid")

    diagnosis = stuck.read_diagnosis(read, spec, "local")
    assert diagnosis.cause == "unreachable"
    assert diagnosis.lines == [("/health not read (RunPod answered 401: the key is not valid): why jobs wait is "
                               "unknown; the list stands")]


def _report(stuck_jobs: int, cause: str) -> dict[str, Any]:
    diagnosis = stuck.QueueDiagnosis(cause, [f"the {cause} line", "what to do"])
    return stuck.StuckReport(stack="staging", target="local", now="2026-01-01T00:00:00Z", older_than_minutes=10,
                             created_before="2025-12-31T23:50:00Z", stuck=stuck_jobs, more=stuck_jobs, younger=0,
                             jobs=[], queue_diagnosis=diagnosis).to_dict()


@pytest.mark.parametrize(("stuck_jobs", "cause", "shown"), [
    (0, "starting", True),       # no job stuck yet: the younger ones wait for the same cold start
    (0, "busy", True),
    (0, "unreachable", True),    # the operator asked; that it went unread is said
    (0, "running", False),       # nothing to act on
    (0, "none_queued", False),
    (2, "running", True),        # jobs stuck: always why
    (2, "none_queued", True),
])
def test_the_text_says_why_jobs_wait_when_jobs_are_stuck_or_the_cause_is_worth_acting_on(stuck_jobs, cause, shown):
    text = stuck.render_text(_report(stuck_jobs, cause))
    assert (f"  why jobs wait (RunPod): the {cause} line\n      what to do" in text) is shown, text
