"""A stack's logs as its loggers write them when a worker dies at its start (the emulator's, the worker's), on a
clock a second apart, and `goldgate status` over them, as the tests of status's worker exits use them
(test_review27_mutsvc_status_exits, test_review30_store_restart_exits). No stack is started."""

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


@pytest.fixture(name="logs")
def ticking_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stack's logs dir; each log line a second after the one before, from ten minutes ago (inside 15 min)."""
    start = datetime.now(UTC) - timedelta(minutes=10)
    ticks = (start + timedelta(seconds=i) for i in itertools.count())
    monkeypatch.setattr(goldgate_logs, "now_rfc3339",
                        lambda: next(ticks).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    (tmp_path / "logs").mkdir()
    yield tmp_path / "logs"


def died_at_start(logs: Path, worker: str, image: str, models: int = 5, worker_log: bool = True,
                  image_on_exit: bool = True) -> None:
    """The emulator starts a worker; its preflight logs preflight_failed (the runbook's words, `models` files
    present); it exits 3."""
    with (logs / "runpod-emulator.jsonl").open("a", encoding="utf-8") as stream:
        emulator = EventLog(stream, "staging")
        emulator.info("worker.started", worker=worker, endpoint_id="ep1", image=image, pid=4242)
        if worker_log:
            with (logs / f"worker-{worker}.log").open("a", encoding="utf-8") as fh:
                JsonLogger("worker", fh, stack="staging", workflow_version="2026.11.0", worker_image_tag=image).error(
                    "preflight_failed", message=f"{NO_MODELS}: the checkpoint loader folder is empty under every "
                                                "model root",
                    data={"models": [f"m{i}.safetensors" for i in range(models)]})
        tag = {"worker_image_tag": image} if image_on_exit else {}
        emulator.warning("worker.exited", worker=worker, returncode=3, expected=False, **tag)


def status(logs: Path, serving: str = SERVED) -> list[str]:
    """`goldgate status`'s lines for a running staging stack serving `serving`, with these logs."""
    exits = recent_worker_exits(logs / "runpod-emulator.jsonl", serving=serving)
    return _render_status({"stack": "staging", "running": True, "image": serving, "logs_dir": str(logs),
                           "workers": [], "worker_exits": exits}).splitlines()


def labelled(lines: list[str], label: str) -> list[str]:
    return [ln for ln in lines if ln.strip().startswith(label)]
