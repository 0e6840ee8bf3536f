"""Review 19 (rel): a golden run on a local stack whose pin moved after the run read it (a deploy finished in
between) is refused before any case is sent: run on, its cases met the new image, and its report and ledger entry
failed the image the run was bound to, which no case ran on."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from goldgate.errors import StateError
from goldgate.release.deployers.local import LocalDeployer
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths, run_golden
from goldgate.spec import Thresholds

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


class DeployedMeanwhile:
    """A local platform whose STAGING pin reads A once, then B: a deploy of B finished as the golden run began. Its
    API is a port nothing listens on: a case sent there fails."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.reads = 0

    def spec(self, stack: str) -> SimpleNamespace:
        return SimpleNamespace(thresholds=Thresholds(), role="staging", workflow_version="2026.11.0")

    def pinned_image(self, stack: str) -> str:
        self.reads += 1
        return A if self.reads == 1 else B

    def status(self, stack: str) -> SimpleNamespace:
        return SimpleNamespace(running=True, api_url="http://127.0.0.1:9", image=B)

    def api_token(self, stack: str) -> str:
        return "test-token-not-a-secret"

    def not_up(self, stack: str) -> StateError:
        return StateError(f"stack {stack} is not up")


def test_a_golden_run_whose_pin_moved_as_it_started_runs_nothing_and_records_nothing(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    deployer, ledger = LocalDeployer(home, DeployedMeanwhile(home)), Ledger(home, key=None)
    with pytest.raises(StateError, match=f"its pin moved from {A} to {B}.*nothing was run"):
        run_golden(deployer, "staging", ledger, paths=paths, poll_s=0.01)
    assert ledger.entries() == []
    assert not (paths.reports_dir / "latest.json").exists()
