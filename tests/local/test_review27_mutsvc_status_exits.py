"""`goldgate status`'s worker exits, held where a mutation audit (review 27) changed what status says and no test
noticed: a host started on the image it serves after another (`stack.ready`) makes the exits before it past, as a
redeploy does; the newest redeploy and the newest ready worker are the ones that count; the "earlier" line names the
time of the redeploy or ready line that made the exits past; the past exits of the served image and of another image
are kept five each; an exit line without its image takes it from its `worker.started` line; "1 model file", not "1
model files". The lines are written by the loggers that write them in a stack, on a clock a second apart."""

from __future__ import annotations

import json
from pathlib import Path

from worker_exits_support import SERVED, died_at_start, labelled, status, ticking_logs

from goldgate.local.platform import recent_worker_exits
from goldgate.local.runpod.eventlog import EventLog
from goldgate.logs import JsonLogger

__all__ = ["ticking_logs"]  # the `logs` fixture

OTHER = "local/worker@sha256:" + "b" * 64


def _emulator(logs: Path) -> EventLog:
    return EventLog((logs / "runpod-emulator.jsonl").open("a", encoding="utf-8"), "staging")


def _got_ready(logs: Path, worker: str, image: str) -> str:
    """A worker of `image` passed its preflight and got ready: the ts of its `worker.ready` line."""
    emulator = _emulator(logs)
    emulator.info("worker.started", worker=worker, endpoint_id="ep1", image=image, pid=4343)
    emulator.info("worker.ready", worker=worker, endpoint_id="ep1", cold_start_ms=900)
    return _last_ts(logs / "runpod-emulator.jsonl")


def _host(logs: Path, event: str, image: str) -> str:
    """The stack's host takes `image`: `stack.ready` (it started on it) or `stack.redeployed`; the line's ts."""
    with (logs / "stackhost.jsonl").open("a", encoding="utf-8") as stream:
        JsonLogger("orchestrator", stream, stack="staging").info(event, worker_image_tag=image)
    return _last_ts(logs / "stackhost.jsonl")


def _last_ts(path: Path) -> str:
    return str(json.loads(path.read_text(encoding="utf-8").splitlines()[-1])["ts"])


def test_exits_from_before_the_host_started_on_the_served_image_after_another_are_past(logs: Path) -> None:
    # The host took another image (a rollback), then started on the served one again (a deploy while it was down):
    # it took the image anew, as a redeploy does. A start on the image it took last does not (review 30:
    # test_review30_store_restart_exits).
    _host(logs, "stack.ready", SERVED)
    died_at_start(logs, "w-0", SERVED)
    died_at_start(logs, "w-1", SERVED)
    _host(logs, "stack.redeployed", OTHER)
    ready = _host(logs, "stack.ready", SERVED)
    lines = status(logs)
    assert labelled(lines, "worker exits") == [], lines
    [earlier] = labelled(lines, "earlier worker exits")
    assert f"2 in the last 15 min of {SERVED}, which staging serves, from before staging redeployed it ({ready})" \
        in earlier, earlier


def test_the_newest_redeploy_of_the_served_image_is_the_one_that_makes_exits_past(logs: Path) -> None:
    _host(logs, "stack.redeployed", SERVED)
    died_at_start(logs, "w-0", SERVED)
    died_at_start(logs, "w-1", SERVED)
    again = _host(logs, "stack.redeployed", SERVED)
    exits = recent_worker_exits(logs / "runpod-emulator.jsonl", serving=SERVED)
    assert [(e["worker"], e["past_by"], e["past_since"]) for e in exits] == [
        ("w-0", "redeploy", again), ("w-1", "redeploy", again)]
    assert labelled(status(logs), "worker exits") == []


def test_the_earlier_line_names_when_the_later_worker_got_ready_and_the_newest_ready_counts(logs: Path) -> None:
    _got_ready(logs, "w-a", SERVED)        # a worker that got ready: its image can pass the preflight
    died_at_start(logs, "w-0", SERVED)     # then one died at start (its snapshot broken by hand)
    ready = _got_ready(logs, "w-b", SERVED)  # and the one after it got ready again (the snapshot mended)
    exits = recent_worker_exits(logs / "runpod-emulator.jsonl", serving=SERVED)
    assert [(e["worker"], e["past_by"], e["past_since"]) for e in exits] == [("w-0", "worker_ready", ready)]
    lines = status(logs)
    assert labelled(lines, "worker exits") == [], lines
    [earlier] = labelled(lines, "earlier worker exits")
    assert f"from before a later worker of it passed its preflight and got ready for jobs ({ready})" in earlier


def test_past_exits_of_the_served_image_and_of_another_image_are_kept_five_each(logs: Path) -> None:
    for i in range(5):
        died_at_start(logs, f"w-old-{i}", OTHER)  # the image a rollback took off
    died_at_start(logs, "w-0", SERVED)
    died_at_start(logs, "w-1", SERVED)
    _host(logs, "stack.redeployed", SERVED)
    lines = status(logs)
    assert labelled(lines, "worker exits") == [], lines
    earlier = labelled(lines, "earlier worker exits")
    assert len(earlier) == 2, lines
    assert any(f"2 in the last 15 min of {SERVED}, which staging serves" in ln for ln in earlier), earlier
    assert any(f"5+ in the last 15 min of {OTHER}, which staging no longer serves" in ln
               and "newest: w-old-4" in ln for ln in earlier), earlier


def test_an_exit_line_without_its_image_takes_it_from_the_workers_started_line(logs: Path) -> None:
    # no worker log (the worker died before writing one) and no image on the exit line: `worker.started` says it
    died_at_start(logs, "w-old", OTHER, worker_log=False, image_on_exit=False)
    [e] = recent_worker_exits(logs / "runpod-emulator.jsonl", serving=SERVED)
    assert (e["image"], e["past"], e["past_by"]) == (OTHER, True, "another_image")
    lines = status(logs)
    assert labelled(lines, "worker exits") == [], lines
    assert any(f"of {OTHER}, which staging no longer serves" in ln for ln in labelled(lines, "earlier worker exits"))


def test_one_model_file_present_is_said_in_the_singular(logs: Path) -> None:
    died_at_start(logs, "w-0", SERVED, models=1)
    [now] = labelled(status(logs), "worker exits")
    assert "its checkpoint folder empty (1 model file present)" in now, now


def test_an_exit_its_log_says_nothing_of_does_not_claim_the_worker_had_no_models(logs: Path) -> None:
    # no worker log: the hint names the runbook section for a preflight_failed exit, without claiming "no models"
    died_at_start(logs, "w-0", SERVED, worker_log=False)
    [now] = labelled(status(logs), "worker exits")
    assert "a worker that exits at start with preflight_failed found models missing" in now, now
    assert "no models" not in now, now
