"""Where `goldgate stuck` starts naming the runaway runbook and the bulk cancel: at RUNAWAY_QUEUE_PER_WORKER jobs
queued for each of the endpoint's max workers, and, when its max workers is unknown, at one worker's worth (an
endpoint whose size goldgate cannot read is not assumed large enough to hide a runaway)."""

from __future__ import annotations

from goldgate.ops import stuck
from goldgate.runpod.jobs import Health

RUNAWAY_LINE = "A runaway client: stop the spend"


def _said(queued: int, workers_max: int | None) -> str:
    health = Health(jobs={"inQueue": queued, "inProgress": 2}, workers={"running": 2, "idle": 0, "initializing": 0})
    cause, lines = stuck.diagnose(health, workers_max=workers_max, gpu_pools=("ADA_24",), stack="prod",
                                  target="local")
    assert cause == "busy"
    return "\n".join(lines)


def test_the_runaway_line_starts_at_its_queue_per_worker() -> None:
    per_worker = stuck.RUNAWAY_QUEUE_PER_WORKER
    assert per_worker == 50
    assert RUNAWAY_LINE in _said(3 * per_worker, 3)
    assert RUNAWAY_LINE not in _said(3 * per_worker - 1, 3)


def test_an_unknown_max_workers_counts_as_one_worker() -> None:
    said = _said(stuck.RUNAWAY_QUEUE_PER_WORKER, None)
    assert RUNAWAY_LINE in said and "for the endpoint's workers" in said, said
    assert RUNAWAY_LINE not in _said(stuck.RUNAWAY_QUEUE_PER_WORKER - 1, None)
