"""The lines that point an operator at the bulk cancel during a runaway are lines that run: `goldgate stuck` on a
cloud stack names the cloud's options (run as printed, it would list the local stack's jobs), does not claim one
worker when the endpoint's max workers is unknown; and a selection whose read found no job, though the count read
after it found one (a runaway queued it in between), is told as nothing to cancel, not a traceback."""

from __future__ import annotations

from goldgate.ops import bulk_cancel, stuck
from goldgate.runpod.jobs import Health


def _busy(queued: int, workers_max: int | None, target: str) -> str:
    health = Health(jobs={"inQueue": queued, "inProgress": 3}, workers={"running": 3, "idle": 0, "initializing": 0})
    cause, lines = stuck.diagnose(health, workers_max=workers_max, gpu_pools=("ADA_24",), stack="prod", target=target)
    assert cause == "busy"
    return "\n".join(lines)


def test_the_cloud_runaway_line_reads_the_clouds_d1() -> None:
    said = _busy(940, 3, "cloud")
    assert "`goldgate cancel --all-queued --stack prod --target cloud --database-id <D1 uuid>`" in said, said
    local = _busy(940, 3, "local")
    assert "`goldgate cancel --all-queued --stack prod`" in local and "--target" not in local, local


def test_an_unknown_max_workers_is_not_said_to_be_one_worker() -> None:
    said = _busy(940, None, "local")
    assert "for 1 worker" not in said and "for the endpoint's workers" in said, said
    assert "for 3 workers" in _busy(940, 3, "local")


def test_a_job_queued_between_the_two_reads_is_nothing_to_cancel_not_a_traceback() -> None:
    # The count (a second read) found a job the first read did not: a runaway queued it in between.
    selection = bulk_cancel.Selection(bulk_cancel.QUEUED)
    preview = bulk_cancel.report("prod", "local", selection, bulk_cancel.Selected([], 1),
                                 "goldgate cancel --all-queued --stack prod --yes")
    said = bulk_cancel.render_text(preview.to_dict())
    assert said.startswith("prod: no job to cancel"), said
    assert bulk_cancel.exit_code(preview) == 0
