"""The cloud checklist's /health note (cloud_facts.endpoint_notes) beyond the no-capacity case the capacity test
holds: a waiting cause's lines all joined (what it is, then what to do), the endpoint's own max workers named,
and a note with nothing waiting that counts the workers."""

from __future__ import annotations

from goldgate.ops import cloud_facts
from goldgate.spec import load_pulumi


def _note(jobs: dict[str, int], workers: dict[str, int], workers_max: int = 3) -> str:
    spec = load_pulumi("prod")
    state = cloud_facts.EndpointState(
        stack="prod", role="prod", endpoint_id="ep1", name=spec.endpoint.name, image=None, pinned=None,
        workflow_version=spec.workflow_version, network_volumes=(), workers_max=workers_max,
        declared_workers_max=3, release_version=1, rollout_in_progress=False, percent_on_latest=100,
        workers_total=sum(workers.values()), stale_workers=0,
        health={"jobs": {"inQueue": 0, "inProgress": 0, **jobs},
                "workers": {"idle": 0, "initializing": 0, "running": 0, "throttled": 0, "unhealthy": 0, **workers}})
    notes = [n for n in cloud_facts.endpoint_notes(state, spec) if "/health" in n]
    assert len(notes) == 1, notes
    return notes[0]


def test_a_busy_endpoint_names_its_max_workers_and_what_to_raise() -> None:
    note = _note({"inQueue": 5}, {"running": 2, "throttled": 1}, workers_max=2)
    assert "5 jobs IN_QUEUE behind 2 running, 0 idle and 0 initializing workers (max workers 2)" in note, note
    # the second line, joined: what the throttled one is waiting for
    assert "; 1 more throttled (no GPU free in " in note, note


def test_with_nothing_waiting_the_note_counts_the_workers_as_they_are() -> None:
    note = _note({"inProgress": 1}, {"running": 1, "throttled": 2})
    assert note.endswith("/health: no job waits for a worker (1 in progress; workers 1 running, 0 idle, "
                         "0 initializing, 2 throttled, 0 unhealthy)"), note
