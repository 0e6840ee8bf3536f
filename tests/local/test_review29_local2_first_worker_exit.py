"""Review 29 (local2): `goldgate status` of a stack whose image lacks its checkpoint (docs/RUNBOOK.md, "No checkpoint
models appear to be available") called the first worker exits after `goldgate up` "earlier worker exits ... from
before prod redeployed it: past, not its problem now", and said nothing of them as the stack's problem. A PROD keeps
a worker up from the moment its endpoint is created, so that worker starts, fails its preflight and exits before the
host writes `stack.ready`, the line status took for the moment it took the image. Status now compares with when the
host began to take it (the line's `data.began_at`: the host's start, or a redeploy's)."""

from __future__ import annotations

from pathlib import Path

from processes import wait_until
from stackfiles import stacks_file

from goldgate.commands.local import WORKER_SOURCE, _render_status
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

STACK = "prod"   # workers_min 1: its first worker starts with the endpoint, before the stack is ready
SECTION = 'docs/RUNBOOK.md, "No checkpoint models appear to be available"'


def _broken_image(home: Path) -> str:
    """The runbook's way to make the case locally: the image's checkpoint deleted from its snapshot."""
    image = image_store.build_local_image(WORKER_SOURCE, home)
    for model in (image_store.resolve(image, home) / "models" / "checkpoints").iterdir():
        model.unlink()
    return image


def test_the_first_worker_exits_after_up_are_the_stacks_problem_now(home: Path) -> None:
    platform = LocalPlatform(home, stacks_file(home, prod={"comfy_startup_s": 0}))
    image = _broken_image(home)
    StackDir(home, STACK).pin(image, reason="test: a release whose checkpoint is missing")
    try:
        platform.up(STACK)
        assert wait_until(lambda: platform.status(STACK).worker_exits, 60), "no worker exited"
        status = platform.status(STACK)
    finally:
        platform.down(STACK)
    first, newest = status.worker_exits[0], status.worker_exits[-1]
    assert first["image"] == image and first["cause"] == "no_models", first
    assert [(e["past"], e["past_by"]) for e in status.worker_exits] == [(False, None)] * len(status.worker_exits), \
        status.worker_exits
    text = _render_status(status.to_dict())
    # Before: "earlier worker exits  1 in the last 15 min of <image>, which prod serves, from before prod redeployed
    # it (...): past, not its problem now", and no `worker exits` line
    assert "earlier worker exits" not in text, text
    current = [line for line in text.splitlines() if line.strip().startswith("worker exits")]
    assert len(current) == 1 and f"newest: {newest['worker']}, code 3" in current[0], text
    assert "its preflight found models missing, its checkpoint folder empty" in current[0] and SECTION in current[0]

