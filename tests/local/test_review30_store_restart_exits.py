"""Review 30 (store): `goldgate status` after `goldgate down staging && goldgate up staging` of an image whose workers
crash-loop (its checkpoint removed: preflight_failed) called the exits from before the restart "earlier worker
exits ... from before staging redeployed it: past, not its problem now", as if the restart were a redeploy; the same
image fails as before. A host that starts again on the image it took last takes nothing new (a start on an image
after another, and a redeploy of the same digest, still do: test_review27_mutsvc_status_exits).

The lines are written by the loggers that write them in a stack (the emulator's, the host's, the worker's), on a
clock a second apart: no stack is started."""

from __future__ import annotations

from pathlib import Path

from worker_exits_support import SERVED, died_at_start, labelled, status, ticking_logs

from goldgate import logs as goldgate_logs
from goldgate.local.platform import recent_worker_exits
from goldgate.logs import JsonLogger

__all__ = ["ticking_logs"]  # the `logs` fixture


def _host_started(logs: Path, image: str) -> None:
    """What a host logs as it starts serving `image` (`goldgate up`): `stack.ready`, began_at its start."""
    with (logs / "stackhost.jsonl").open("a", encoding="utf-8") as stream:
        host = JsonLogger("orchestrator", stream, stack="staging")
        host.info("stack.ready", worker_image_tag=image, data={"began_at": goldgate_logs.now_rfc3339()})


def test_a_restart_on_the_same_image_does_not_make_its_earlier_exits_past(logs: Path) -> None:
    _host_started(logs, SERVED)            # `goldgate up staging`
    died_at_start(logs, "w-0", SERVED)     # its checkpoint removed: each worker fails its preflight
    died_at_start(logs, "w-1", SERVED)
    _host_started(logs, SERVED)            # `goldgate down staging && goldgate up staging`: the same image
    lines = status(logs)
    # Before: no current exits, and "earlier worker exits 2 ... from before staging redeployed it: past, not its
    # problem now", of the image that still fails
    [now] = labelled(lines, "worker exits")
    assert "2 unexpected" in now and "newest: w-1" in now and "preflight found models missing" in now, lines
    assert labelled(lines, "earlier worker exits") == [], lines
    assert [e["past"] for e in recent_worker_exits(logs / "runpod-emulator.jsonl", serving=SERVED)] == [False, False]

    died_at_start(logs, "w-2", SERVED)     # the restarted host's workers fail alike
    [now] = labelled(status(logs), "worker exits")
    assert "3 unexpected" in now and "newest: w-2" in now

