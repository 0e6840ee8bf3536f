"""A docker build belongs to whichever target deploys its image: its ledger entry's `target` is the engine that built
it (docker or local), not a stack's target. Read as a stack's target, every docker build was dropped from the cloud
target's view of the ledger (and from the local one's): `goldgate history --target cloud` hid the builds of the cloud
releases it listed, and the release ids the cloud's promotion, rollback and checklist name came from no build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from release_support import invoke

from goldgate.release.history import on_target, release_ids
from goldgate.release.ledger import Ledger

PUSHED = "registry.example/goldgate/worker@sha256:" + "d" * 64
SNAPSHOT = "local/worker@sha256:" + "e" * 64


def _ledger(home: Path) -> Ledger:
    ledger = Ledger(home)
    ledger.append("build", image=PUSHED, release_id="r-docker", target="docker", reused=False)
    ledger.append("build", image=SNAPSHOT, release_id="r-local", target="local", reused=False)
    ledger.append("deploy", stack="staging", image=PUSHED, target="cloud")
    return ledger


def test_a_docker_build_is_in_the_cloud_targets_ledger_with_its_release_id(tmp_path: Path) -> None:
    entries = on_target(_ledger(tmp_path / "home").entries(), "cloud")
    assert PUSHED in [e.get("image") for e in entries if e.kind == "build"]   # a build names no target: either's
    assert release_ids(entries)[PUSHED] == "r-docker"


def test_history_for_the_cloud_target_lists_its_docker_build(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    _ledger(home)
    code, out, _ = invoke(capsys, "history", "--home", str(home), "--target", "cloud", "--json")
    assert code == 0
    shown = json.loads(out)
    rows = shown["entries"] if isinstance(shown, dict) else shown
    assert [(r["kind"], r.get("image")) for r in rows] == [("build", PUSHED), ("build", SNAPSHOT), ("deploy", PUSHED)]
