"""Two release-gate rules the session-14 mutation audit left without a test of their own (its P7 and P18).

P7: a manual rollback that never moved PROD (its deploy was refused) is not PROD's verdict on the digest it tried
to leave: that digest may be promoted again later without `--retry-rejected`.
P18: the gate reads only its own target's ledger entries: a cloud deploy to the cloud's STAGING stack, recorded in
the same state dir, is not a redeploy of the local STAGING stack that would make its golden report stale."""

from __future__ import annotations

from pathlib import Path

from release_support import StandInApi, standin_api
from test_promotion_evidence import Target, _released, _staging_passes
from test_promotion_partial_failure import _staging_passes as _deployed_and_passes
from test_review13_two_targets_one_ledger import C1, L1, Cloud

from goldgate.commands.release import do_deploy
from goldgate.errors import GoldgateError
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths

A, B, C = ("local/worker@sha256:" + c * 64 for c in "123")


def test_a_manual_rollback_refused_before_prod_moved_is_no_verdict_on_the_digest_it_tried_to_leave(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A, B)
        target.refuse = {A}                      # PROD's deploy of A fails before any change: PROD stays on B
        try:
            refused = rollback(target, ledger, home, to=A, paths=paths)
        except GoldgateError:
            refused = None
        assert refused is None or not refused.ok
        assert target.pins["prod"] == B
        target.refuse = set()
        _released(target, ledger, home, paths, C)
        # B never left PROD on the operator's word: qualified again on STAGING, it may go back without
        # --retry-rejected (counting that rollback as a rejection refused it: "prod rejected ...").
        _staging_passes(target, ledger, paths, B)
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.ok and target.pins["prod"] == B


def test_a_cloud_deploy_to_staging_does_not_make_the_local_staging_report_stale(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=L1)) as api:
        local, cloud = Target(api, {}), Cloud(api, {})
        _deployed_and_passes(local, ledger, paths, L1)     # `goldgate deploy staging`, recorded, then golden
        # The same checkout deploys the cloud's STAGING stack (named staging too) after the local golden run.
        do_deploy(cloud, ledger, "staging", C1, "test")
        api.image_tag = L1                                 # the local STAGING stack still runs L1
        outcome = promote(local, ledger, home, paths=paths)
    assert outcome.ok and local.pins["prod"] == L1
