"""`goldgate down` while a `goldgate reload` (or a deploy) holds the stack: `down` never waits for the up lock and
stops the host under it, and the host, asking the up lock who wanted its stop, found the reload's words there and
logged `down`'s own stop as one from outside goldgate ("stopped by SIGTERM, not by `goldgate down` (a reboot,
systemd, `kill`?)"), the line the runbook sends an operator after a reboot or an OOM kill for. `down` now holds a
lock of its own (stop.lock) while it stops a stack whose up lock another holds, and the host reads that too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stackfiles import stacks_file

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir


def _stopped_lines(d: StackDir) -> list[dict[str, Any]]:
    lines = (d.logs_dir / "stackhost.jsonl").read_text(errors="replace").splitlines()
    return [e for e in map(json.loads, filter(None, lines)) if e.get("event") == "stack.stopped"]


def test_a_down_while_a_reload_holds_the_stack_is_logged_as_asked_not_as_a_reboot(home: Path) -> None:
    platform = LocalPlatform(home, stacks_file(home))
    stack = "staging"
    d = StackDir(home, stack)
    d.pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up(stack, timeout_s=90)
    try:
        with d.reloading() as holder:  # a `goldgate reload` in progress, as far as `down` and the host can tell
            assert holder is None
            said: list[str] = []
            platform.down(stack, progress=said.append)
        assert said == [f"{stack}: stopping"], said
        stopped = _stopped_lines(d)
        assert [(e["level"], e.get("message")) for e in stopped] == [("info", None)], stopped
        assert not d.state_file.exists() and platform.running_host(stack) is None
        assert d.stop_asked_by() is None  # the lock is let go with the stop: a later SIGTERM is nobody's
    finally:
        platform.down(stack)


def test_a_stop_from_outside_goldgate_while_a_reload_holds_the_stack_is_still_said_as_such(home: Path) -> None:
    d = StackDir(home, "staging")
    d.ensure()
    with d.reloading() as holder:
        assert holder is None
        assert d.stop_asked_by() is None  # the reload's words are nobody's ask to stop
