"""Review 27 (mutrel): what `goldgate promote` says when PROD's smoke run, and then its automatic rollback's, refused
to run (the stacks file edited while the promotion ran). Nothing was judged: the operator is told the rollback failed
for the same reason and to promote again once the cause is settled, not to chase a verdict. Mutants that dropped
either sentence survived the suite (it checked only what the message must not say)."""

from __future__ import annotations

from pathlib import Path

from release_support import StandInApi
from test_review26_smoke_declared import A, B, _released_a_then_b_on_staging, standin_api

from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths


def test_a_promotion_whose_smoke_runs_did_not_run_says_why_once_and_to_promote_again(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with standin_api(StandInApi(image_tag=A)) as api:
        platform, deployer, ledger = _released_a_then_b_on_staging(tmp_path, api, paths)
        platform.edit_on_deploy["prod"] = "2026.13.0"
        outcome = promote(deployer, ledger, tmp_path / "home", paths=paths)
    assert outcome.outcome == "smoke_not_run" and outcome.rollback is not None
    assert outcome.rollback.outcome == "smoke_not_run" and outcome.rollback.error == outcome.error
    message = outcome.message()
    assert message.startswith(f"PROD smoke did not run for {B}: "), message
    assert (f"; the automatic rollback to {A} was not verified either (smoke not run, for the same reason); "
            in message), message
    assert message.count("goldgate down prod && goldgate up prod") == 1, message   # the cause, said once
    assert message.endswith(f": no smoke case ran, so nothing was judged of {B} (no ledger verdict against it): "
                            "settle the cause above, then `goldgate promote` again"), message
