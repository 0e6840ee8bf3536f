"""Review 27 (mutrel): only a rollback's smoke run leaves out the smoke cases whose workflow the release does not
serve; a promotion's runs every smoke case. A mutant that let the promotion leave them out too survived the suite
(its promotions served every case's workflow): a PROD that took the digest but serves no `wf-a` then passed its smoke
on the other case, and the release was promoted with a workflow its users call failing on every job."""

from __future__ import annotations

from pathlib import Path

from release_support import write_case
from test_promotion_evidence import Target
from test_review26_smoke_declared import ServingApi, standin_api
from test_review26_smoke_rollback_cases import _qualify, _smoke_runs

from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


def test_a_promotion_whose_prod_does_not_serve_a_smoke_cases_workflow_fails_its_smoke(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # Both cases are smoke cases: `square` runs wf-a, `batch` wf-b.
    write_case(paths.cases_dir, "batch", "workflow: wf-b\nsmoke: true\ninputs: {prompt: p2, seed: 2, width: 48, "
                                         "height: 32, batch_size: 2}\nexpect: {images: 2, width: 48, height: 32}\n")
    home = tmp_path / "home"
    with standin_api(ServingApi(image_tag=A)) as api:
        ledger, target = Ledger(home), Target(api, {})
        _qualify(target, ledger, paths, A)
        assert promote(target, ledger, home, paths=paths).ok
        _qualify(target, ledger, paths, B)          # STAGING: B serves wf-a and wf-b, and passes
        api.served[B] = {"wf-b"}                     # PROD, once it runs B, serves no wf-a
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.outcome == "smoke_failed", outcome.message()
    smoke = _smoke_runs(ledger, B)[-1]
    assert smoke.get("passed") is False and smoke.get("cases") == 2 and smoke.get("skipped_cases") is None
    assert outcome.rollback is not None and outcome.rollback.ok and target.pins["prod"] == A
