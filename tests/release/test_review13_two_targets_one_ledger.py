"""One state dir, two targets: the README's first command releases on the local target, and the same checkout
then promotes and rolls back the cloud stacks (`--target cloud`) with the same `.goldgate/ledger.jsonl`. Both
targets name their stacks staging and prod. Before, each target read the other's promotions and rollbacks as its
own: the local `goldgate release` after a cloud promotion was refused as a stale stack file ("a re-run of an earlier
CI run?"), and a failed cloud promotion rolled back automatically to the newest local release, which the cloud
cannot run, leaving PROD on the failed candidate. Stacks are the in-process targets over the stand-in job API."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, render_png, standin_api
from test_promotion_evidence import Target
from test_promotion_partial_failure import _staging_passes

from goldgate.errors import GoldgateError
from goldgate.release.deployers.base import DeployResult, Progress
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths

L1, L2 = ("local/worker@sha256:" + c * 64 for c in "ab")
C1, C2 = ("ghcr.example/acme/worker@sha256:" + c * 64 for c in "cd")


class Cloud(Target):
    """The cloud target's stacks, as the cloud deployer treats images: a local snapshot is refused."""

    target = "cloud"

    def deploy(self, stack: str, image: str, progress: Progress) -> DeployResult:
        if image.startswith("local/"):
            raise GoldgateError(f"{image} is a local-target image (from the local image store); the cloud needs a "
                                "pushed one")
        return super().deploy(stack, image, progress)


def _broken_on(api: StandInApi, image: str):  # type: ignore[no-untyped-def]
    """Renders like the references, except on `image`, which draws nothing like them."""
    def renders(workflow: str, inputs: dict) -> list[bytes]:
        size = int(inputs.get("width", 64)), int(inputs.get("height", 64))
        seed = "a broken model" if api.image_tag == image else f"{workflow}:{inputs.get('prompt')}:{inputs.get('seed')}"
        return [render_png(f"{seed}:{i}", *size) for i in range(int(inputs.get("batch_size", 1)))]
    return renders


def test_each_target_reads_only_its_own_releases_from_a_shared_ledger(tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=L1)) as api:
        local, cloud = Target(api, {}), Cloud(api, {})
        _staging_passes(local, ledger, paths, L1)
        assert promote(local, ledger, home, paths=paths).ok
        _staging_passes(cloud, ledger, paths, C1)
        assert promote(cloud, ledger, home, paths=paths).ok
        # Before: StalePin, "prod is pinned to L1 in this checkout, but its last promotion left it on C1".
        _staging_passes(local, ledger, paths, L2)
        assert promote(local, ledger, home, paths=paths).ok
        assert (local.pins["prod"], cloud.pins["prod"]) == (L2, C1)
        # C2 passes on STAGING and draws nothing like the references on PROD: the automatic rollback goes back to
        # C1, the cloud's last verified release (before: to L2, which the cloud refused, and PROD stayed on C2).
        _staging_passes(cloud, ledger, paths, C2)
        api.renders = _broken_on(api, C2)
        cloud.pins["staging"] = C2
        outcome = promote(cloud, ledger, home, paths=paths)
        assert outcome.outcome == "smoke_failed" and outcome.rollback is not None
        assert (outcome.rollback.image, outcome.rollback.ok, cloud.pins["prod"]) == (C1, True, C1)
        # An operator's rollback on either target picks among that target's releases only.
        assert rollback(local, ledger, home, paths=paths).image == L1
        with pytest.raises(GoldgateError, match=r"no earlier verified release to roll back to \(prod runs "
                                                r"ghcr.example/acme/worker@sha256:c+\)"):
            rollback(cloud, ledger, home, paths=paths)
    assert (local.pins["prod"], cloud.pins["prod"]) == (L1, C1)
    kinds = {(e.kind, e.get("phase"), e.get("target")) for e in ledger.entries() if e.kind in ("promotion", "rollback")}
    assert ("promotion", "outcome", "cloud") in kinds and ("rollback", "outcome", "local") in kinds


def test_entries_recorded_before_the_target_was_are_told_by_their_image(tmp_path: Path) -> None:
    from goldgate.release.history import last_verified, on_target  # on_target is new here

    ledger = Ledger(tmp_path / "home")
    ledger.append("build", image=L1, release_id="r-local", trigger="test")
    for image in (C1, L1):   # an older goldgate's verified releases: no `target` field
        ledger.append("promotion", phase="outcome", intent_seq=1, stack="prod", image=image, before=None,
                      after=image, pinned=image, prod_image=image, outcome="promoted", trigger="test")
    entries = ledger.entries()
    assert last_verified(on_target(entries, "cloud")).image == C1
    assert last_verified(on_target(entries, "local")).image == L1
    assert [e.kind for e in on_target(entries, "cloud")] == ["build", "promotion"]   # a build names no target
