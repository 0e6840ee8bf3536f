"""PROD's verdict on a digest outlives later STAGING runs. A candidate whose fault shows only on PROD (its handler
breaks where STACK=prod) passes every golden run on STAGING: before, its smoke failure on PROD was only held against
the golden run it was promoted from, the refusal told the operator to "run `goldgate golden staging` to qualify it
again", that run passed, and the next promotion put the digest back on PROD, where its smoke failed a second time.
Now only the operator's explicit `promote --retry-rejected` retries it, and the ledger records that it was asked.
Stacks are the in-process target over the stand-in job API."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import A, B, _released, _staging_passes
from test_promotion_partial_failure import Recorded

from goldgate.release.gate import PromotionRefused
from goldgate.release.golden import ApiAccess
from goldgate.release.ledger import Ledger, LedgerKeyMissing
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths

KEY = "k3y-" + "e" * 60


class ProdOnlyFault(Recorded):
    """One stand-in API serves both stacks, each running its pin; an image in `faulty` fails every job on PROD only
    (as a handler that breaks where STACK=prod), and renders as it should on STAGING."""

    faulty: set[str]

    def api_access(self, stack: str) -> ApiAccess:
        self.api.image_tag = self.pins.get(stack) or ""
        broken = stack == "prod" and self.pins.get(stack) in self.faulty
        self.api.fail_workflows = {"wf-a", "wf-b"} if broken else set()
        return super().api_access(stack)


def _failed_on_prod_then_passed_staging_again(home: Path, paths: GoldenPaths, ledger: Ledger,
                                              api: StandInApi) -> ProdOnlyFault:
    target = ProdOnlyFault(api, {})
    target.faulty = {B}
    _released(target, ledger, home, paths, A)
    _staging_passes(target, ledger, paths, B)
    first = promote(target, ledger, home, paths=paths)
    assert (first.outcome, first.prod_image) == ("smoke_failed", A)
    _staging_passes(target, ledger, paths, B)      # what the refusal used to advise: it passes, the fault is PROD's
    target.deploys.clear()
    return target


def test_a_digest_that_failed_only_on_prod_stays_off_prod_after_a_new_staging_run(tmp_path: Path,
                                                                                   paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = _failed_on_prod_then_passed_staging_again(home, paths, ledger, api)
        with pytest.raises(PromotionRefused) as refused:
            promote(target, ledger, home, paths=paths)
    message = str(refused.value)
    assert f"prod_verdict: {B} went to prod and its smoke cases failed there (ledger #" in message
    assert "qualify it again" not in message and "goldgate promote --retry-rejected" in message
    assert [c.name for c in refused.value.decision.conditions if not c.passed] == ["prod_verdict"]
    assert target.deploys == [] and target.pins["prod"] == A
    assert ledger.entries()[-1].get("phase") == "refused"


def test_retry_rejected_puts_it_back_and_the_ledger_says_the_operator_asked(tmp_path: Path,
                                                                           paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = _failed_on_prod_then_passed_staging_again(home, paths, ledger, api)
        target.faulty.clear()                      # the cause on PROD (its config, a secret) is fixed
        outcome = promote(target, ledger, home, paths=paths, retry_rejected=True)
        assert outcome.ok and target.pins["prod"] == B
        intent = [e for e in ledger.entries() if e.kind == "promotion" and e.get("phase") == "intent"][-1]
        assert intent.get("retry_rejected") is True
        verdict = next(c for c in outcome.gate.conditions if c.name == "prod_verdict")
        assert verdict.passed and "--retry-rejected" in verdict.detail
        # PROD verified it since: its earlier failure no longer needs the flag (e.g. after a rollback off a later one)
        _staging_passes(target, ledger, paths, B)
        assert promote(target, ledger, home, paths=paths).ok


def test_a_forged_verified_promotion_does_not_clear_prods_verdict_on_a_signed_ledger(tmp_path: Path,
                                                                                     paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home, key=KEY.encode())
    with standin_api(StandInApi(image_tag=A)) as api:
        target = _failed_on_prod_then_passed_staging_again(home, paths, ledger, api)
        Ledger(home, key=None).append("promotion", phase="outcome", stack="prod", target="local", image=B,
                                      prod_image=B, outcome="promoted", trigger="forged")   # no MAC
        with pytest.raises(PromotionRefused, match="prod_verdict: "):
            promote(target, ledger, home, paths=paths)
        with pytest.raises(LedgerKeyMissing):   # the override is recorded, so it needs the key like any promotion
            promote(target, Ledger(home, key=None), home, paths=paths, retry_rejected=True)
    assert target.deploys == [] and target.pins["prod"] == A

