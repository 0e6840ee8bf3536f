"""`goldgate status <stack>` names the worker exits of the last 15 minutes. Their hint said "(docs/RUNBOOK.md)" only,
and after a rollback from an image whose workers died at start (no models) to a healthy one it kept presenting the
broken image's exits as the stack's problem for 15 minutes. Each exit now says which image the worker ran (its
`worker.started` line, or its own log), the section of the runbook its log points to, and exits of an image the stack
no longer serves are shown as past. The logs are written by the emulator's and the worker's own loggers."""

from __future__ import annotations

from pathlib import Path

from goldgate.commands.local import _render_status
from goldgate.local.platform import recent_worker_exits
from goldgate.local.runpod.eventlog import EventLog
from goldgate.logs import JsonLogger

BROKEN = "local/worker@sha256:" + "c" * 64
HEALTHY = "local/worker@sha256:" + "d" * 64
SECTION = 'docs/RUNBOOK.md, "No checkpoint models appear to be available"'


def _worker_died_at_start(logs: Path, worker: str, image: str, started_line: bool = True) -> None:
    """What a worker whose image lacks its checkpoint leaves: the emulator starts it, its preflight logs
    preflight_failed with the first-aid words, and it exits 3."""
    with (logs / "runpod-emulator.jsonl").open("a", encoding="utf-8") as stream:
        emulator = EventLog(stream, "prod")
        if started_line:
            emulator.info("worker.started", worker=worker, endpoint_id="ep1", image=image, pid=4242)
        with (logs / f"worker-{worker}.log").open("a", encoding="utf-8") as fh:
            JsonLogger("worker", fh, stack="prod", workflow_version="2026.11.0", worker_image_tag=image).error(
                "preflight_failed", message="No checkpoint models appear to be available: the checkpoint loader "
                                            "folder is empty under every model root")
        emulator.warning("worker.exited", worker=worker, returncode=3, expected=False)


def _status(logs: Path, serving: str, scoped: bool = True) -> str:
    """The status text of PROD serving `serving`; `scoped`: its exits read knowing what it serves, as `status` does."""
    log = logs / "runpod-emulator.jsonl"
    exits = recent_worker_exits(log, serving=serving) if scoped else recent_worker_exits(log)
    return _render_status({"stack": "prod", "running": True, "image": serving, "logs_dir": str(logs),
                           "workers": [], "worker_exits": exits})


def test_an_exit_whose_preflight_found_no_models_names_its_image_and_the_runbook_section(tmp_path: Path) -> None:
    _worker_died_at_start(tmp_path, "w-1", BROKEN)
    _worker_died_at_start(tmp_path, "w-2", BROKEN, started_line=False)  # its start fell out of the log's tail
    text = _status(tmp_path, BROKEN, scoped=False)
    line = next(ln for ln in text.splitlines() if "worker exits" in ln)
    # Before: "... (newest: w-2, code 3, <ts>): see <logs>/worker-w-2.log; a worker that exits at start with
    # preflight_failed has no models (docs/RUNBOOK.md)"
    assert "2 unexpected in the last 15 min (newest: w-2, code 3" in line and f"image {BROKEN}" in line, line
    assert f"its preflight found models missing, its checkpoint folder empty: {SECTION}" in line, line
    exits = recent_worker_exits(tmp_path / "runpod-emulator.jsonl", serving=BROKEN)
    assert [(e["worker"], e["image"], e["cause"], e["past"]) for e in exits] == [
        ("w-1", BROKEN, "no_models", False), ("w-2", BROKEN, "no_models", False)]


def test_after_a_rollback_to_a_healthy_image_the_broken_images_exits_are_past(tmp_path: Path) -> None:
    for i in range(3):
        _worker_died_at_start(tmp_path, f"w-{i}", BROKEN)
    text = _status(tmp_path, HEALTHY)  # `goldgate rollback`: PROD serves the healthy release again
    assert not any(ln.strip().startswith("worker exits") for ln in text.splitlines()), text
    past = next(ln for ln in text.splitlines() if "earlier worker exits" in ln)
    assert f"3 in the last 15 min of {BROKEN}, which prod no longer serves (it serves {HEALTHY})" in past, past
    assert "past, not its problem now" in past
    # the healthy image's own worker dies too: that one is the stack's problem now, the broken image's stay past
    _worker_died_at_start(tmp_path, "w-9", HEALTHY)
    lines = _status(tmp_path, HEALTHY).splitlines()
    now = next(ln for ln in lines if ln.strip().startswith("worker exits"))
    assert "1 unexpected" in now and "newest: w-9" in now and f"image {HEALTHY}" in now, now
    assert any("earlier worker exits" in ln and "3 in the last 15 min" in ln for ln in lines), lines
