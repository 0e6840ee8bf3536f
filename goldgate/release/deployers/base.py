"""The deployer interface and its result value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from goldgate.errors import GoldgateError
from goldgate.release.gate import ErrorRate
from goldgate.release.golden import ApiAccess
from goldgate.spec import StackSpec

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DeployResult:
    """What a stack ran before and after a deploy; `rollout` is the target's evidence of completion."""

    stack: str
    target: str
    before: str | None
    after: str | None
    rollout: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "target": self.target, "before": self.before, "after": self.after,
                "rollout": self.rollout}


@dataclass(frozen=True)
class ServedPin:
    """A stack's pin that its running host serves (a local stack's `pin.json`, in the state dir): what the stack runs,
    read from the stack itself, not from a checkout's stack file that may be older than it. `pinned_at` is when the
    pin was written (None when it does not say)."""

    image: str
    pinned_at: datetime | None


def workers_kept(stack: str, release_id: str, workers: int, fresh: str) -> str:
    """What a deploy that made no new release says, on either target: RunPod (and the local emulator, which follows
    it) makes a release only when the container changes (image, env...), so a redeploy of the image a stack runs, with
    the same settings, keeps its warm workers, and their preflight does not run again. `fresh`: how new ones start."""
    kept = f"its {workers} warm worker(s) stay" if workers else "no worker runs now"
    return (f"{stack}: no new release (the image and settings it already ran: release {release_id} stays), so "
            f"{kept}: a worker runs its preflight when it starts, and none started for this deploy; {fresh}")


class RolloutNotConfirmed(GoldgateError):
    """The deploy applied `result.after` to the stack (the target took the pin: the cloud's `pulumi up` succeeded),
    but its rollout could not be confirmed (the watch of it failed). The stack serves, or is rolling to, the new
    image: what it ran before is no longer what it runs, and the caller records `result` as a deploy whose rollout was
    not confirmed (`rollout["confirmed"]` False), never as one that did not happen."""

    def __init__(self, message: str, result: DeployResult) -> None:
        super().__init__(message)
        self.result = result


class Deployer(Protocol):
    """One target's stacks: what they run, how to change it, and how to reach and measure them."""

    target: str

    def current_image(self, stack: str) -> str | None:
        """The image pinned for `stack` (repo@sha256:...), or None if nothing was deployed."""

    # Optional (the local deployer has it; the gate asks with getattr): `served_pin(stack) -> ServedPin | None`, the
    # pin when the running stack's host serves it. The cloud's pin is a checkout's stack file, which a re-run of an
    # earlier CI run holds older than the stack: there the ledger's deploys say what STAGING runs.

    def deploy(self, stack: str, image: str, progress: Progress) -> DeployResult:
        """Pin `image` for `stack`, apply it, and return once every worker runs it."""

    def spec(self, stack: str) -> StackSpec:
        """The stack's spec (thresholds, workflow version) with the pinned image applied."""

    def api_access(self, stack: str) -> ApiAccess:
        """The stack's public API URL and bearer token."""

    def error_rate(self, stack: str, since: datetime) -> ErrorRate:
        """Failed / terminal jobs on `stack` since `since`, from job_metrics."""

    def ensure_up(self, stack: str, progress: Progress) -> None:
        """Make sure the stack exists and serves (local: bring it up; cloud: nothing to do)."""
