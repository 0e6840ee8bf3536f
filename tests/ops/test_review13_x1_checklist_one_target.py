"""The checklist reads only its own target's releases from a ledger both targets share (one checkout releases on the
local target, then promotes the cloud stacks with `--target cloud`; both name their stacks staging and prod).
`goldgate promote` and `goldgate rollback` already kept them apart; the checklist still read every entry: the local
PROD line failed, "no promotion or rollback in the ledger put" the image there, after a cloud promotion, and the
cloud's rollback line passed naming a local snapshot the cloud cannot run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_checklist_cloud import IMG_A, IMG_B, cloud, seed_sql, seeded_image  # noqa: F401 -- the cloud pair's fixtures

from goldgate.cli import main
from goldgate.local.state import StackDir
from goldgate.ops import checklist
from goldgate.release.ledger import Ledger

pytestmark = pytest.mark.usefixtures("scan_once")  # checklist runs scan service/ once (conftest.py)

L1 = "local/worker@sha256:" + "1" * 64
C1, C2 = ("registry.example.com/your-org/goldgate-worker@sha256:" + c * 64 for c in "cd")
RELEASE_LINES = ("golden_before_promote", "prod_same_digest", "rollback_ready", "pipeline_complete", "rollback_smoke")


def _release(ledger: Ledger, target: str, image: str) -> None:
    """One release as `goldgate release` records it: build, STAGING deploy, golden, the promotion's intent and
    outcome, each naming its target."""
    ledger.append("build", image=image, release_id=f"r-{target}-{image[-4:]}", target=target)
    ledger.append("deploy", stack="staging", target=target, before=None, after=image, rollout="complete",
                  image=image)
    ledger.append("golden", stack="staging", target=target, image=image, suite="full", passed=True)
    intent = ledger.append("promotion", phase="intent", stack="prod", target=target, image=image,
                           gate={"passed": True})
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", target=target, image=image,
                  prod_image=image, outcome="promoted", smoke_passed=True)


def _failed_rollback(ledger: Ledger, target: str, image: str, before: str) -> None:
    intent = ledger.append("rollback", phase="intent", stack="prod", target=target, image=image, before=before,
                           reason="manual")
    ledger.append("rollback", phase="outcome", intent_seq=intent.seq, stack="prod", target=target, image=image,
                  before=before, prod_image=before, outcome="failed", smoke_passed=False,
                  error="smoke case sdxl failed")


def _lines(results: list[checklist.CheckResult]) -> dict[str, tuple[str, str]]:
    return {r.id: (r.status, r.evidence) for r in results if r.id in RELEASE_LINES}


def test_the_local_checklist_judges_local_releases_only(tmp_path: Path, capsys) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    _release(ledger, "local", L1)
    for image in (C1, C2):   # then the same checkout promotes the cloud stacks
        _release(ledger, "cloud", image)
    _failed_rollback(ledger, "cloud", C1, before=C2)
    for stack in ("staging", "prod"):
        StackDir(home, stack).pin(L1, reason="test")
    main(["checklist", "staging", "--home", str(home), "--reports-dir", str(tmp_path / "reports"), "--offline",
          "--json"])
    lines = {c["id"]: (c["status"], c["evidence"]) for c in json.loads(capsys.readouterr().out)["checks"]
             if c["id"] in RELEASE_LINES}
    assert lines["prod_same_digest"][0] == checklist.PASS, lines   # before: FAIL, "which no promotion ... put there"
    assert L1 in lines["prod_same_digest"][1]
    # Before: PASS, "rollback target: r-cloud-... C2", an image the local stacks cannot run.
    oldest = f"PROD runs its oldest verified release ({L1}): nothing earlier to pin yet"
    assert lines["rollback_ready"] == (checklist.NA, oldest)
    assert lines["pipeline_complete"] == (checklist.PASS, f"{L1}: build -> deploy STAGING -> golden -> promoted")
    gated = "all 1 promotions passed the golden gate on STAGING first"
    assert lines["golden_before_promote"] == (checklist.PASS, gated)
    assert lines["rollback_smoke"][0] == checklist.NA, lines    # before: FAIL, the cloud's failed rollback
    assert not any(C1 in evidence or C2 in evidence for _, evidence in lines.values()), lines


def test_the_cloud_checklist_judges_cloud_releases_only(cloud) -> None:  # noqa: F811 -- the fixture
    # The fixture's ledger: IMG_A then IMG_B promoted on the cloud (recorded before entries named their target:
    # told by their pushed image). Then the same checkout releases a local snapshot and fails a local rollback.
    ledger = Ledger(cloud.home)
    _release(ledger, "local", L1)
    _failed_rollback(ledger, "local", "local/worker@sha256:" + "2" * 64, before=L1)
    results = checklist.run_checks(cloud.read().facts)
    assert {r.id: r.evidence for r in results if r.status == checklist.FAIL} == {}
    lines = _lines(results)
    # Before: FAIL, "PROD runs IMG_B, which no promotion or rollback in the ledger put there".
    assert lines["prod_same_digest"][0] == checklist.PASS and IMG_B in lines["prod_same_digest"][1]
    # Before: PASS naming the local snapshot L1 as the cloud's rollback target.
    assert lines["rollback_ready"][0] == checklist.PASS
    assert IMG_A in lines["rollback_ready"][1] and L1 not in lines["rollback_ready"][1]
    assert lines["pipeline_complete"] == (checklist.PASS, f"{IMG_B}: build -> deploy STAGING -> golden -> promoted")
    assert lines["golden_before_promote"][1] == "all 2 promotions passed the golden gate on STAGING first"
    assert lines["rollback_smoke"][0] == checklist.NA   # before: FAIL, the local rollback's smoke
