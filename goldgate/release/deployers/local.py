"""The local deployer: the embedded target's stacks through `goldgate.local.platform.LocalPlatform`,
which pins the image in the state dir, patches the emulator endpoint (same id) and waits until its
`/releases` shows the new release on every worker. A deploy and a golden run of one stack exclude each other
(`StackLock`): neither changes or judges an image while the other is at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError, StateError
from goldgate.release.deployers.base import (
    DeployResult,
    Progress,
    RolloutNotConfirmed,
    ServedPin,
    workers_kept,
)
from goldgate.release.error_rate import from_sqlite
from goldgate.release.gate import ErrorRate, aware_time
from goldgate.release.golden import ApiAccess
from goldgate.release.lock import StackLock
from goldgate.release.verification import StackNotAsDeclared
from goldgate.spec import StackSpec


class LocalRolloutNotConfirmed(StateError, RolloutNotConfirmed):
    """The stack took the image and serves it, and its rollout did not reach every worker within the deploy's wait
    (a worker of the release before busy with a long job) or could not be read (`result` says what was applied)."""


class LocalDeployer:
    target = "local"

    def __init__(self, home: Path, platform: Any = None) -> None:
        if platform is None:
            from goldgate.local.platform import LocalPlatform

            platform = LocalPlatform(home)
        self.platform = platform
        self.home = Path(getattr(platform, "home", home))

    def current_image(self, stack: str) -> str | None:
        return self.platform.pinned_image(stack)

    def served_pin(self, stack: str) -> ServedPin | None:
        """The pin, when the running stack's host serves it: the stack's own record of what it runs (its state dir's
        pin file, which no checkout holds an older copy of). None when the stack is down, its host serves another
        image (a deploy under way, or one cut short before the host took the pin) or does not say what it serves."""
        pinned = self.platform.pinned_image(stack)
        status = self.platform.status(stack)
        if pinned is None or not status.running or getattr(status, "image", None) != pinned:
            return None
        from goldgate.local.state import StackDir

        try:
            pin = StackDir(self.home, stack).read_pin()
        except (OSError, StateError):
            pin = None
        return ServedPin(pinned, aware_time(pin.get("pinned_at") if isinstance(pin, dict) else None))

    def deploy(self, stack: str, image: str, progress: Progress) -> DeployResult:
        from goldgate.local.platform import RolloutNotComplete

        self.platform.spec(stack)  # an unknown stack is refused by name before a lock file is made for it
        with StackLock(self.home, self.target, stack, "deploy", f"a deploy of {image} to {stack}"):
            before = self.platform.pinned_image(stack)
            started = datetime.now(UTC)
            try:
                status = self.platform.deploy(stack, image, progress=progress)
            except RolloutNotComplete as exc:
                # The stack serves `image` now: recorded as applied (as the cloud's `pulumi up` that applied it),
                # or the ledger would say it runs what it ran before.
                applied = DeployResult(stack=stack, target=self.target, before=before, after=image,
                                       rollout={"endpoint_id": exc.endpoint_id, "confirmed": False, **exc.rollout})
                raise LocalRolloutNotConfirmed(f"{stack} serves {image}, but {exc}; then deploy it again to "
                                               "confirm the rollout", applied) from None
            after = self.platform.pinned_image(stack)
            release = self._release_before(stack, status, started)
        kept = release is not None
        workers = getattr(status, "workers", None)
        if kept:   # "rollout complete" alone read as fresh workers, which would have run their preflight again
            progress(workers_kept(stack, str(release), len(workers or []),
                                  f"`goldgate down {stack} && goldgate up {stack}` starts it with fresh ones"))
        return DeployResult(stack=stack, target=self.target, before=before, after=after,
                            rollout={"endpoint_id": getattr(status, "endpoint_id", None),
                                     "workers": _jsonable(workers),
                                     **({"new_release": False, "release_id": release} if kept else {})})

    def _release_before(self, stack: str, status: Any, started: datetime) -> str | None:
        """The id of the newest release of the stack's endpoint (the local RunPod's, on the machine's clock) when it
        was made before `started`: the deploy that began then made none. None when it made one, or when that cannot
        be read (a platform that keeps no RunPod). Read after the deploy only: a read before it would wait on a host
        that hangs, before the pin moves."""
        base, endpoint_id = getattr(status, "runpod_api_base", None), getattr(status, "endpoint_id", None)
        if not isinstance(base, str) or not isinstance(endpoint_id, str):
            return None
        from goldgate.runpod import ControlPlaneClient

        try:
            with ControlPlaneClient(api_key=self.platform.runpod_api_key(stack),
                                    base_url=base.removesuffix("/v2")) as client:
                latest = client.list_releases(endpoint_id).latest
        except (GoldgateError, OSError):   # RunPodError among them
            return None
        made = None if latest is None else aware_time(latest.created_at)
        return latest.id if latest is not None and made is not None and made < started else None

    def spec(self, stack: str) -> StackSpec:
        return self.platform.spec(stack)

    def api_access(self, stack: str) -> ApiAccess:
        status = self.platform.status(stack)
        if not status.running or not status.api_url:
            raise self.platform.not_up(stack)
        return ApiAccess(api_url=status.api_url, token=self.platform.api_token(stack),
                         hold=partial(self._golden_run, stack))

    @contextmanager
    def _golden_run(self, stack: str, image: str | None, suite: str) -> Iterator[None]:
        """Held by a golden run on `stack` bound to `image`: no deploy starts meanwhile, and none may be half done
        as it starts. A stack whose pin is not what it serves (a deploy rolling out, or one killed before its host
        took the pin) would fail every case on the image it still serves, and the report, which `promote` gates on,
        would fail an image no case ran on."""
        with StackLock(self.home, self.target, stack, "golden", f"a {suite} golden run on {stack}"):
            pinned = self.platform.pinned_image(stack)
            if pinned != image:
                raise StateError(f"not running the golden tests on {stack}: its pin moved from {image} to {pinned} "
                                 "as the run started (a deploy finished meanwhile); nothing was run: run them again")
            status = self.platform.status(stack)
            if not status.running:
                raise self.platform.not_up(stack)
            served = getattr(status, "image", pinned)  # a platform that does not say what it serves: its pin
            if served != pinned:
                # `goldgate status` has the whole story (a deploy killed before its host took the pin, a host that
                # could not serve it) and its advice; the CLI cuts a longer line in the middle.
                raise StateError(f"not running the golden tests on {stack}: it is pinned to {pinned} but serves "
                                 f"{served or 'no image'}, so its cases would run on that; `goldgate status {stack}` "
                                 "says why and how to settle it; nothing was run")
            # The report takes its workflow version from the stacks file, which the running stack read at its start:
            # after an edit, a report would vouch for a version no case ran under, and the gate, comparing it with
            # the same edited file, would let it through. No verdict on the image either way (`StackNotAsDeclared`):
            # a promotion or rollback records its smoke run as not run, not as failed.
            why = self._not_as_declared(stack, status)
            if why:
                raise StackNotAsDeclared(f"not running the golden tests on {stack}: {why}; nothing was run")
            yield

    @contextmanager
    def gate_hold(self, stack: str, *, check: bool = False) -> Iterator[None]:
        """Held by a promotion while its gate judges `stack` (STAGING): a golden run under way there would write the
        newest evidence for the image it tests (the gate would judge the report before it, which "only the newest run
        for a digest counts" rules out), and a deploy under way moves the pin the gate reads. Refused (StackBusy),
        not waited for, as every lock of the release path. `check`: held by `promote --check`, which judges the gate
        as the promotion will and never promotes: its refusals say so, not "nothing was promoted"."""
        if check:
            lock = StackLock(self.home, self.target, stack, "check", f"a `promote --check` reading {stack}",
                             again="goldgate promote --check")
        else:
            lock = StackLock(self.home, self.target, stack, "gate", f"a promotion's gate reading {stack}",
                             again="goldgate promote")
        with lock:
            yield

    def not_as_declared(self, stack: str) -> str | None:
        """Why a golden or smoke run on `stack` would refuse to run because the running stack is not the one its
        stacks file declares (its workflow_version), with the command that applies the file; None when it is, or
        the stack is down (its next start reads the file)."""
        status = self.platform.status(stack)
        return self._not_as_declared(stack, status) if status.running else None

    def _not_as_declared(self, stack: str, status: Any) -> str | None:
        declared = self.platform.spec(stack).workflow_version
        runs = getattr(status, "workflow_version", declared)
        if not isinstance(runs, str) or runs == declared:
            return None
        where = getattr(self.platform, "stacks_file", None)
        shown = "the stacks file" if where is None else _shown(Path(where))
        return (f"{shown}'s {stack} section declares workflow_version {declared!r} but the running stack serves {runs!r} "
                f"(it read the file at its start); apply the edit with `goldgate down {stack} && goldgate up "
                f"{stack}`, or undo it")

    def error_rate(self, stack: str, since: datetime) -> ErrorRate:
        return from_sqlite(self.platform.db_path(stack), stack, since)

    def ensure_up(self, stack: str, progress: Progress) -> None:
        self.platform.up(stack, progress=progress)


def _shown(path: Path) -> str:
    """The stacks file as the operator edits it: from the checkout's root when it is there."""
    from goldgate.release.cases import REPO_ROOT

    where = path.resolve()
    return where.relative_to(REPO_ROOT).as_posix() if where.is_relative_to(REPO_ROOT) else str(path)




def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else str(value)
