"""`goldgate stuck` on an endpoint whose queue is far longer than its workers can serve soon does not only advise
more workers: hundreds queued for three workers is as likely a client stuck in a loop, which more workers would
serve faster and bill more. It names the runbook's runaway section and the bulk cancel that lists the jobs."""

from __future__ import annotations

from goldgate.ops import stuck
from goldgate.runpod.jobs import Health


def _busy(queued: int, workers_max: int) -> list[str]:
    health = Health(jobs={"inQueue": queued, "inProgress": workers_max},
                    workers={"running": workers_max, "idle": 0, "initializing": 0})
    cause, lines = stuck.diagnose(health, workers_max=workers_max, gpu_pools=("ADA_24",), stack="prod",
                                  target="cloud")
    assert cause == "busy"
    return lines


def test_hundreds_queued_for_three_workers_names_the_runaway_section_and_the_bulk_cancel() -> None:
    said = "\n".join(_busy(940, 3))
    assert "raise endpoint.workers_max" in said  # it may still be traffic
    assert "A runaway client: stop the spend" in said and "goldgate cancel --all-queued --stack prod" in said


def test_a_queue_a_few_times_the_workers_is_only_busy() -> None:
    said = "\n".join(_busy(12, 3))
    assert "runaway" not in said and len(_busy(12, 3)) == 1
