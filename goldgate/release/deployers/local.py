"""The local deployer: the embedded target's stacks through `goldgate.local.platform.LocalPlatform`,
which pins the image in the state dir, patches the emulator endpoint (same id) and waits until its
`/releases` shows the new release on every worker."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from goldgate.release.deployers.base import DeployResult, Progress
from goldgate.release.error_rate import from_sqlite
from goldgate.release.gate import ErrorRate
from goldgate.release.golden import ApiAccess
from goldgate.spec import StackSpec


class LocalDeployer:
    target = "local"

    def __init__(self, home: Path, platform: Any = None) -> None:
        if platform is None:
            from goldgate.local.platform import LocalPlatform

            platform = LocalPlatform(home)
        self.platform = platform

    def current_image(self, stack: str) -> str | None:
        return self.platform.pinned_image(stack)

    def deploy(self, stack: str, image: str, progress: Progress) -> DeployResult:
        before = self.platform.pinned_image(stack)
        status = self.platform.deploy(stack, image, progress=progress)
        after = self.platform.pinned_image(stack)
        return DeployResult(stack=stack, target=self.target, before=before, after=after,
                            rollout={"endpoint_id": getattr(status, "endpoint_id", None),
                                     "workers": _jsonable(getattr(status, "workers", None))})

    def spec(self, stack: str) -> StackSpec:
        return self.platform.spec(stack)

    def api_access(self, stack: str) -> ApiAccess:
        status = self.platform.status(stack)
        if not status.running or not status.api_url:
            raise self.platform.not_up(stack)
        return ApiAccess(api_url=status.api_url, token=self.platform.api_token(stack))

    def error_rate(self, stack: str, since: datetime) -> ErrorRate:
        return from_sqlite(self.platform.db_path(stack), stack, since)

    def ensure_up(self, stack: str, progress: Progress) -> None:
        self.platform.up(stack, progress=progress)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else str(value)
