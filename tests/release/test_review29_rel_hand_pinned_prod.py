"""Review 29 (rel): a local PROD pinned by hand (its pin.json edited) to a candidate nothing judged there. `goldgate
status prod` now calls it UNVERIFIED and offers two ways out, `goldgate rollback` or the gate (a golden run on STAGING,
then `goldgate promote --image` it); both must lead somewhere:
- the rollback off it was recorded as the operator's verdict on the candidate (reason "manual"), so the gate's
  prod_verdict then refused `promote --image` it for good ("an operator's rollback took prod off it"), though no smoke
  run ever judged it;
- a second hand pin of it after that made every promote and rollback refuse as a stale CI checkout ("this stack file
  is older than that change (a re-run of an earlier CI run?) ... start a new run from the newest main"): a local
  stack's pin.json is the stack's own record, which no checkout holds an older copy of;
- a promotion refused meanwhile said "PROD unchanged", as if all were well."""

from __future__ import annotations

from pathlib import Path

import pytest
from promotion_support import released
from release_support import invoke
from test_promotion_evidence import B, C, Target, _staging_passes

import goldgate.commands.release as release_commands
from goldgate.release.deployers.base import ServedPin
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths

D = "local/worker@sha256:" + "d" * 64
E = "local/worker@sha256:" + "e" * 64


class LocalLike(Target):
    """The in-process target with the local deployer's `served_pin`: its pins are the stacks' own records."""

    def served_pin(self, stack: str) -> ServedPin | None:
        image = self.pins.get(stack)
        return ServedPin(image, None) if image else None


def _pin_by_hand(target: Target, image: str) -> None:
    target.pins["prod"] = image      # pin.json edited, the stack restarted: it serves the pin
    target.api.image_tag = image


def test_a_rollback_off_a_hand_pinned_candidate_is_no_verdict_and_the_gate_can_still_promote_it(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with released(tmp_path, paths, B, make=lambda api: LocalLike(api, {})) as r:
        _staging_passes(r.target, r.ledger, paths, C)      # C passed golden on STAGING; nobody promoted it
        _pin_by_hand(r.target, C)
        back = rollback(r.target, r.ledger, r.home, paths=paths)
        assert back.ok and r.target.pins["prod"] == B
        _staging_passes(r.target, r.ledger, paths, C)
        outcome = promote(r.target, r.ledger, r.home, paths=paths, expected_image=C)
    assert outcome.ok, outcome.message()
    assert r.target.pins["prod"] == C


def test_a_local_prod_pinned_by_hand_again_is_not_refused_as_a_stale_checkout(tmp_path: Path,
                                                                             paths: GoldenPaths) -> None:
    with released(tmp_path, paths, B, make=lambda api: LocalLike(api, {})) as r:
        _pin_by_hand(r.target, C)
        assert rollback(r.target, r.ledger, r.home, paths=paths).ok      # prod back on B; C is its `before`
        _pin_by_hand(r.target, C)                                     # and by hand on C again
        back = rollback(r.target, r.ledger, r.home, paths=paths)
    assert back.ok and back.image == B and r.target.pins["prod"] == B


def test_a_refused_promotion_does_not_call_a_hand_pinned_prod_unchanged(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # "promotion refused, PROD unchanged" read as all being well while PROD served a release nothing judged.
    with released(tmp_path, paths, B, staging_passed=C, make=lambda api: LocalLike(api, {})) as r:
        _pin_by_hand(r.target, D)
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: r.target)
        code, out, err = invoke(capsys, "promote", "--home", str(r.home), "--report",
                                str(paths.reports_dir / "latest.json"), "--image", E)
    assert code == 1 and "promotion refused" in err, err
    assert "PROD unchanged" not in out, out
    assert (f"promotion refused, PROD not changed by it, but prod is pinned to {D}, which no promotion or rollback "
            "verified there") in out, out
    assert f"`goldgate rollback` puts back the last verified release ({B}" in out, out
