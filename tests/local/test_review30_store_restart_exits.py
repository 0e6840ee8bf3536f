"""Review 30 (store): `goldgate status` after `goldgate down staging && goldgate up staging` of an image whose workers
crash-loop (its checkpoint removed: preflight_failed) called the exits from before the restart "earlier worker
exits ... from before staging redeployed it: past, not its problem now", as if the restart were a redeploy; the same
image fails as before. A host that starts again on the image it took last takes nothing new (a start on an image
after another, and a redeploy of the same digest, still do: test_review27_mutsvc_status_exits).

The lines are written by the loggers that write them in a stack (the emulator's, the host's, the worker's), on a
clock a second apart: no stack is started."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from goldgate import logs as goldgate_logs
from goldgate.commands.local import _render_status
from goldgate.local.platform import NO_MODELS, recent_worker_exits
from goldgate.local.runpod.eventlog import EventLog
from goldgate.logs import JsonLogger

SERVED = "local/worker@sha256:" + "a" * 64


@pytest.fixture()
def logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stack's logs dir; each log line a second after the one before, from ten minutes ago (inside 15 min)."""
    start = datetime.now(UTC) - timedelta(minutes=10)
    ticks = (start + timedelta(seconds=i) for i in itertools.count())
    monkeypatch.setattr(goldgate_logs, "now_rfc3339",
                        lambda: next(ticks).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    (tmp_path / "logs").mkdir()
    yield tmp_path / "logs"


def _died_at_start(logs: Path, worker: str, image: str) -> None:
    with (logs / "runpod-emulator.jsonl").open("a", encoding="utf-8") as stream:
        emulator = EventLog(stream, "staging")
        emulator.info("worker.started", worker=worker, endpoint_id="ep1", image=image, pid=4242)
        with (logs / f"worker-{worker}.log").open("a", encoding="utf-8") as fh:
            JsonLogger("worker", fh, stack="staging", workflow_version="2026.11.0", worker_image_tag=image).error(
                "preflight_failed", message=f"{NO_MODELS}: the checkpoint loader folder is empty under every model "
                                            "root", data={"models": [f"m{i}.safetensors" for i in range(5)]})
        emulator.warning("worker.exited", worker=worker, returncode=3, expected=False, worker_image_tag=image)


def _host_started(logs: Path, image: str) -> None:
    """What a host logs as it starts serving `image` (`goldgate up`): `stack.ready`, began_at its start."""
    with (logs / "stackhost.jsonl").open("a", encoding="utf-8") as stream:
        host = JsonLogger("orchestrator", stream, stack="staging")
        host.info("stack.ready", worker_image_tag=image, data={"began_at": goldgate_logs.now_rfc3339()})


def _status(logs: Path) -> list[str]:
    exits = recent_worker_exits(logs / "runpod-emulator.jsonl", serving=SERVED)
    return _render_status({"stack": "staging", "running": True, "image": SERVED, "logs_dir": str(logs),
                           "workers": [], "worker_exits": exits}).splitlines()


def _lines(lines: list[str], label: str) -> list[str]:
    return [ln for ln in lines if ln.strip().startswith(label)]


def test_a_restart_on_the_same_image_does_not_make_its_earlier_exits_past(logs: Path) -> None:
    _host_started(logs, SERVED)            # `goldgate up staging`
    _died_at_start(logs, "w-0", SERVED)    # its checkpoint removed: each worker fails its preflight
    _died_at_start(logs, "w-1", SERVED)
    _host_started(logs, SERVED)            # `goldgate down staging && goldgate up staging`: the same image
    lines = _status(logs)
    # Before: no current exits, and "earlier worker exits 2 ... from before staging redeployed it: past, not its
    # problem now", of the image that still fails
    [now] = _lines(lines, "worker exits")
    assert "2 unexpected" in now and "newest: w-1" in now and "preflight found models missing" in now, lines
    assert _lines(lines, "earlier worker exits") == [], lines
    assert [e["past"] for e in recent_worker_exits(logs / "runpod-emulator.jsonl", serving=SERVED)] == [False, False]

    _died_at_start(logs, "w-2", SERVED)    # the restarted host's workers fail alike
    [now] = _lines(_status(logs), "worker exits")
    assert "3 unexpected" in now and "newest: w-2" in now

