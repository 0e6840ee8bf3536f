"""Deployers: put an image on a stack and say what it runs, behind one interface for both targets.

`for_target("local", home)` drives the local platform; `for_target("cloud", home)` drives Pulumi's
Automation API and waits on RunPod's release rollout. Everything above (golden, promote, rollback)
speaks only `Deployer`.
"""

from __future__ import annotations

from pathlib import Path

from goldgate.errors import GoldgateError
from goldgate.release.deployers.base import Deployer, DeployResult

__all__ = ["DeployResult", "Deployer", "for_target"]


def for_target(target: str, home: Path) -> Deployer:
    if target == "local":
        from goldgate.release.deployers.local import LocalDeployer

        return LocalDeployer(home)
    if target == "cloud":
        from goldgate.release.deployers.cloud import CloudDeployer

        return CloudDeployer.from_env(home)
    raise GoldgateError(f"unknown target {target!r}: use local or cloud")
