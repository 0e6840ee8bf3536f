"""A redeploy of the image a stack already runs says that it kept the warm workers (review 28).

`goldgate deploy staging --image <the image it runs>` (the runbook's way to apply a rotated secret on a local STAGING)
printed "redeploying" and "rollout complete", which read as fresh workers; but RunPod makes a release only when the
container changes, and the local RunPod follows it: the warm workers stayed, and their preflight did not run again (a
workflow author who expected it had to find out that `down` and `up` was needed). Both targets keep RunPod's rule and
now say so, with how fresh workers start; the deploy's rollout record says `new_release: false`. A deploy of another
image makes a release and says nothing of the kind.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cloud_deployer import A, B, deployer, emulator, project  # noqa: F401 -- fixtures, used by name

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "local"))  # the local-target test kit: stack files, worker images

from processes import wait_until
from stackfiles import stacks_file, worker_variant

from goldgate.commands.local import ensure_up
from goldgate.commands.release import do_deploy
from goldgate.local.platform import LocalPlatform
from goldgate.release.deployers.local import LocalDeployer
from goldgate.release.ledger import Ledger
from goldgate.runpod import ControlPlaneClient


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LocalPlatform]:
    home = tmp_path / "home"
    home.mkdir()
    # STAGING keeps one worker running: the warm worker a same-image redeploy keeps, or a new release replaces.
    p = LocalPlatform(home, stacks_file(home, endpoint={"workers_min": 1}, staging={}))
    try:
        yield p
    finally:
        p.down("staging")


def _worker_ids(platform: LocalPlatform) -> set[str]:
    status = platform.status("staging")
    with ControlPlaneClient(api_key=platform.runpod_api_key("staging"),
                            base_url=str(status.runpod_api_base).removesuffix("/v2")) as runpod:
        return {w.id for w in runpod.list_workers(str(status.endpoint_id)).workers if w.status in ("IDLE", "RUNNING")}  # ready: past its preflight


def test_a_local_redeploy_of_the_same_image_says_its_warm_workers_were_kept(
        platform: LocalPlatform, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    image = ensure_up(platform, "staging").image
    assert image is not None
    deployer_ = LocalDeployer(platform.home, platform)
    ledger = Ledger(platform.home)
    assert wait_until(lambda: _worker_ids(platform), 60), "no worker ever ran"
    warm = _worker_ids(platform)
    capsys.readouterr()

    result = do_deploy(deployer_, ledger, "staging", image, "user")   # `goldgate deploy staging --image <it>`
    said = capsys.readouterr().err
    assert "no new release (the image and settings it already ran: release " in said, said
    assert f"its {len(warm)} warm worker(s) stay: a worker runs its preflight when it starts, and none started for " \
           "this deploy; `goldgate down staging && goldgate up staging` starts it with fresh ones" in said, said
    assert result["rollout"]["new_release"] is False
    assert ledger.entries()[-1].get("rollout")["new_release"] is False
    assert warm <= _worker_ids(platform)   # what it said: the very workers run on

    other = worker_variant(platform.home, tmp_path)
    result = do_deploy(deployer_, ledger, "staging", other, "user")
    said = capsys.readouterr().err
    assert "no new release" not in said and "new_release" not in result["rollout"], said


def test_a_cloud_redeploy_of_the_same_digest_says_runpod_kept_its_release_and_workers(project: Path) -> None:  # noqa: F811
    d = deployer(project)
    first = d.deploy("prod", A, progress=lambda _m: None)
    said: list[str] = []
    again = d.deploy("prod", A, progress=said.append)
    assert again.rollout["new_release"] is False and again.rollout["release_id"] == first.rollout["release_id"]
    [note] = [m for m in said if "no new release" in m]
    assert note.startswith(f"prod: no new release (the image and settings it already ran: release "
                           f"{first.rollout['release_id']} stays), so "), note
    assert "RunPod starts fresh ones as it scales the idle ones away" in note
    said.clear()
    other = d.deploy("prod", B, progress=said.append)
    assert "new_release" not in other.rollout and not [m for m in said if "no new release" in m]
