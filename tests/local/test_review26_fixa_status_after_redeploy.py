"""`goldgate status` after the runbook's first aid for "No checkpoint models appear to be available". A journey
review deleted the checkpoint from STAGING's image snapshot (its workers exited at start with preflight_failed), then
fixed it with `goldgate release`, which baked the same digest again and redeployed it; `goldgate status staging` then
showed three IDLE workers and still "worker exits 5+ unexpected in the last 15 min ... its preflight found no models"
for 15 minutes: an exit counted as past only when it ran another image than the one served. Exits from before the
stack's host took the image again (`stack.redeployed`), or before a later worker of it got ready for jobs
(`worker.ready`), are now past; exits after either stay the stack's problem. And the preflight found models missing,
5 of 6 present, not "no models": the line now says what the worker's own preflight_failed line holds.

The lines are written by the loggers that write them in a stack (the emulator's, the host's, the worker's preflight
over a real snapshot with its checkpoint gone), on a clock a second apart: no stack is started."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from goldgate import logs as goldgate_logs
from goldgate.commands.local import WORKER_SOURCE, _render_status
from goldgate.local import image_store
from goldgate.local.platform import recent_worker_exits
from goldgate.local.runpod.eventlog import EventLog
from goldgate.logs import JsonLogger
from images.worker import preflight
from images.worker.logs import WorkerLog

SECTION = 'docs/RUNBOOK.md, "No checkpoint models appear to be available"'


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each goldgate log line a second after the one before, from ten minutes ago (inside status's 15 minutes)."""
    start = datetime.now(UTC) - timedelta(minutes=10)
    ticks = (start + timedelta(seconds=i) for i in itertools.count())
    monkeypatch.setattr(goldgate_logs, "now_rfc3339",
                        lambda: next(ticks).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    yield


@pytest.fixture()
def broken(tmp_path: Path) -> tuple[str, Path]:
    """An image snapshot whose checkpoint was deleted (the review's step), and the logs dir of its stack."""
    image = image_store.build_local_image(WORKER_SOURCE, tmp_path / "home")
    snapshot = image_store.resolve(image, tmp_path / "home")
    for model in (snapshot / "models" / "checkpoints").iterdir():
        model.unlink()
    logs = tmp_path / "logs"
    logs.mkdir()
    return image, logs


def _worker_died_at_start(logs: Path, worker: str, image: str) -> None:
    """The emulator starts a worker; the snapshot's own preflight logs preflight_failed; the worker exits 3."""
    snapshot = image_store.resolve(image, logs.parent / "home")
    with (logs / "runpod-emulator.jsonl").open("a", encoding="utf-8") as stream:
        emulator = EventLog(stream, "staging")
        emulator.info("worker.started", worker=worker, endpoint_id="ep1", image=image, pid=4242)
        report = preflight.run_preflight(snapshot / "worker" / "models.yaml", snapshot / "worker" / "workflows",
                                         [str(snapshot / "models")])
        assert not report.ok
        with (logs / f"worker-{worker}.log").open("a", encoding="utf-8") as fh:
            preflight.log_report(report, WorkerLog(fh, stack="staging", worker_image_tag=image,
                                                   workflow_version="2026.11.0"))
        emulator.warning("worker.exited", worker=worker, returncode=3, expected=False, worker_image_tag=image)


def _worker_got_ready(logs: Path, worker: str, image: str) -> None:
    with (logs / "runpod-emulator.jsonl").open("a", encoding="utf-8") as stream:
        emulator = EventLog(stream, "staging")
        emulator.info("worker.started", worker=worker, endpoint_id="ep1", image=image, pid=4343)
        emulator.info("worker.ready", worker=worker, endpoint_id="ep1", cold_start_ms=900)


def _redeployed(logs: Path, image: str) -> None:
    """What the stack's host logs when a deploy (here `goldgate release`'s, of the same digest) reloads it."""
    with (logs / "stackhost.jsonl").open("a", encoding="utf-8") as stream:
        JsonLogger("orchestrator", stream, stack="staging").info("stack.redeployed", worker_image_tag=image,
                                                                 data={"generation": 2})


def _status(logs: Path, serving: str) -> list[str]:
    exits = recent_worker_exits(logs / "runpod-emulator.jsonl", serving=serving)
    return _render_status({"stack": "staging", "running": True, "image": serving, "logs_dir": str(logs),
                           "workers": [{"id": f"w-ok-{i}", "status": "IDLE", "is_stale": False, "image": serving}
                                       for i in range(3)],
                           "worker_exits": exits}).splitlines()


def _current(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ln.strip().startswith("worker exits")]


def test_the_exit_says_the_preflight_found_models_missing_not_none(clock, broken) -> None:
    image, logs = broken
    _worker_died_at_start(logs, "w-0", image)
    now = _current(_status(logs, image))
    # Before: "its preflight found no models", of a worker that found 5 of its 6 model files
    assert len(now) == 1 and "1 unexpected" in now[0], now
    assert f"its preflight found models missing, its checkpoint folder empty (5 model files present): {SECTION}" \
        in now[0], now[0]
    assert "found no models" not in now[0]


def test_exits_from_before_a_redeploy_of_the_same_digest_are_past_and_later_ones_are_not(clock, broken) -> None:
    image, logs = broken
    for i in range(6):
        _worker_died_at_start(logs, f"w-{i}", image)
    now = _current(_status(logs, image))
    assert len(now) == 1 and "5+ unexpected" in now[0] and "newest: w-5" in now[0], now

    assert image_store.build_local_image(WORKER_SOURCE, logs.parent / "home") == image  # the checkpoint baked again
    _redeployed(logs, image)  # `goldgate release`: the same digest baked again, and redeployed
    lines = _status(logs, image)
    # Before: "worker exits  5+ unexpected in the last 15 min (newest: w-5, ...) ... its preflight found no models"
    assert _current(lines) == [], lines
    earlier = next(ln for ln in lines if "earlier worker exits" in ln)
    assert f"5+ in the last 15 min of {image}, which staging serves, from before staging redeployed it (" in earlier
    assert "past, not its problem now (newest: w-5, code 3" in earlier, earlier

    # the redeploy fixed nothing (the snapshot broken again): its next exits are the stack's problem
    for model in (image_store.resolve(image, logs.parent / "home") / "models" / "checkpoints").iterdir():
        model.unlink()
    _worker_died_at_start(logs, "w-9", image)
    lines = _status(logs, image)
    now = _current(lines)
    assert len(now) == 1 and "1 unexpected" in now[0] and "newest: w-9" in now[0] and f"image {image}" in now[0], lines
    assert any("earlier worker exits" in ln and "newest: w-5" in ln for ln in lines), lines


def test_exits_from_before_a_worker_of_the_image_got_ready_are_past_and_later_ones_are_not(clock, broken) -> None:
    image, logs = broken
    for i in range(3):
        _worker_died_at_start(logs, f"w-{i}", image)
    assert "3 unexpected" in _current(_status(logs, image))[0]
    # the checkpoint copied back into the snapshot by hand: no redeploy, the next worker passes its preflight
    _worker_got_ready(logs, "w-3", image)
    lines = _status(logs, image)
    assert _current(lines) == [], lines
    earlier = next(ln for ln in lines if "earlier worker exits" in ln)
    assert "3 in the last 15 min" in earlier and "a later worker of it passed its preflight and got ready" in earlier
    exits = recent_worker_exits(logs / "runpod-emulator.jsonl", serving=image)
    assert [(e["worker"], e["past"], e["past_by"]) for e in exits] == [
        ("w-0", True, "worker_ready"), ("w-1", True, "worker_ready"), ("w-2", True, "worker_ready")]

    _worker_died_at_start(logs, "w-4", image)  # after the ready one: the stack's problem again
    now = _current(_status(logs, image))
    assert len(now) == 1 and "1 unexpected" in now[0] and "newest: w-4" in now[0], now


def test_a_ready_worker_or_a_redeploy_of_another_image_leaves_the_served_images_exits_current(clock, broken) -> None:
    image, logs = broken
    other = "local/worker@sha256:" + "e" * 64
    for i in range(2):
        _worker_died_at_start(logs, f"w-{i}", image)
    _worker_got_ready(logs, "w-other", other)
    _redeployed(logs, other)
    now = _current(_status(logs, image))
    assert len(now) == 1 and "2 unexpected" in now[0], now


def _worker_crashed_after_ready(logs: Path, worker: str, image: str) -> None:
    """A worker that passed its preflight, got ready, took a job and died in it (a segfault: -11)."""
    _worker_got_ready(logs, worker, image)
    with (logs / "runpod-emulator.jsonl").open("a", encoding="utf-8") as stream:
        EventLog(stream, "staging").warning("worker.exited", worker=worker, returncode=-11, expected=False,
                                            worker_image_tag=image)


def test_workers_that_got_ready_and_then_died_stay_current_however_many_replacements_get_ready(clock, broken) -> None:
    # The review's case: an image that crashes in every job. The emulator starts a replacement after each exit and
    # the replacement gets ready, so "every exit before the newest ready is past" showed a crash loop as past.
    image, logs = broken
    _worker_crashed_after_ready(logs, "w-1", image)
    _worker_crashed_after_ready(logs, "w-2", image)
    _worker_got_ready(logs, "w-3", image)
    exits = recent_worker_exits(logs / "runpod-emulator.jsonl", serving=image)
    assert [(e["worker"], e["returncode"], e["past"]) for e in exits] == [("w-1", -11, False), ("w-2", -11, False)]
    now = _current(_status(logs, image))
    assert len(now) == 1 and "2 unexpected" in now[0] and "newest: w-2, code -11" in now[0], now
