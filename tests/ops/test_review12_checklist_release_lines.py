"""Release lines say what they claim: the DR drill against the documented RPO/RTO, models PROD must not run
unpinned, the rollback target in ledger order, and golden lines judged only on STAGING's pinned image."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta
from pathlib import Path

from test_checklist import IMG_A, IMG_B, healthy  # noqa: F401 -- healthy: the module's pytest fixture
from test_checklist_cloud import IMG_A as CLOUD_IMG_A
from test_checklist_cloud import cloud, seed_sql, seeded_image  # noqa: F401 -- the cloud stand-ins, pytest fixtures

from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts
from goldgate.release.ledger import Ledger

DR_DOC = Path(__file__).resolve().parents[2] / "docs" / "D1_DISASTER_RECOVERY.md"


def _line(facts: Facts, check: str) -> checklist.CheckResult:
    return next(r for r in checklist.run_checks(facts) if r.id == check)


# -- DR drill ------------------------------------------------------------------------------------

def test_a_drill_whose_restore_took_longer_than_the_rto_target_is_red(healthy):  # noqa: F811
    slow = {**healthy.drill, "rto_s": 45 * 60.0}  # before: PASS "RTO 2700.0 s"
    line = _line(dataclasses.replace(healthy, drill=slow), "dr_drill")
    assert line.status == checklist.FAIL and "restored in 2700 s, over the RTO target of 30 minutes" in line.evidence
    unmeasured = _line(dataclasses.replace(healthy, drill={**healthy.drill, "rto_s": None}), "dr_drill")
    assert unmeasured.status == checklist.FAIL and "no measured RTO" in unmeasured.evidence
    ok = _line(healthy, "dr_drill")
    assert ok.status == checklist.PASS and "target 1800 s" in ok.evidence


def test_a_cloud_drill_older_than_the_daily_rpo_allows_is_red(healthy):  # noqa: F811
    # The cloud drill is D1's daily backup (RPO 24 h); before, a drill up to 7 days old passed.
    two_days = {**healthy.drill, "finished_at": (healthy.now - timedelta(days=2)).isoformat()}
    line = _line(dataclasses.replace(healthy, stack="prod", target="cloud", drill=two_days), "dr_drill")
    assert line.status == checklist.FAIL and "more than the 25 h" in line.evidence
    assert "--target cloud --database-id" in line.evidence
    # a local drill is a rehearsal: weekly
    assert _line(dataclasses.replace(healthy, drill=two_days), "dr_drill").status == checklist.PASS


def test_the_dr_document_states_the_limits_the_checklist_enforces():
    text = " ".join(DR_DOC.read_text(encoding="utf-8").split())
    assert f"within {checklist.DRILL_MAX_AGE_S['cloud'] // 3600} hours" in text
    assert f"within {checklist.DRILL_MAX_AGE_S['local'] // 86_400} days" in text
    assert re.search(rf"\| RTO \| {checklist.RTO_TARGET_S // 60} minutes \|", text)
    assert "RTO over 30 minutes" in text


# -- models PROD must not run unpinned -----------------------------------------------------------

def _unpinned(facts: Facts) -> Facts:
    warning = ("loras/flux_realism_lora.safetensors has no confirmed size/sha256 in models.yaml: the build cannot "
               "verify it; confirm both from the source and pin them")
    return dataclasses.replace(facts, consistency=dataclasses.replace(facts.consistency, warnings=(warning,)))


def test_an_unpinned_model_fails_cloud_prods_models_line_and_is_named_elsewhere(healthy):  # noqa: F811
    staging = _line(_unpinned(healthy), "models_match")
    assert staging.status == checklist.PASS  # STAGING is where it is tried; the warning is named, not counted
    assert "loras/flux_realism_lora.safetensors has no confirmed size/sha256" in staging.evidence
    local_prod = _line(dataclasses.replace(_unpinned(healthy), stack="prod"), "models_match")
    # a local PROD runs the local image's stand-in files: named, not counted
    assert local_prod.status == checklist.PASS and "flux_realism_lora.safetensors" in local_prod.evidence
    prod = _line(dataclasses.replace(_unpinned(healthy), stack="prod", target="cloud"), "models_match")
    assert prod.status == checklist.FAIL  # before: PASS "(1 warning(s))"
    assert "1 model(s) unpinned in images/worker/models.yaml, which PROD must not run" in prod.evidence
    assert "loras/flux_realism_lora.safetensors" in prod.evidence


# -- rollback target -----------------------------------------------------------------------------

def _promoted_then(tmp_path: Path, *rollbacks: tuple[str, str]) -> tuple:
    ledger = Ledger(tmp_path)
    for image in (IMG_A, IMG_B):
        ledger.append("build", image=image, release_id=f"r-{image[-4:]}")
        ledger.append("promotion", phase="outcome", stack="prod", image=image, prod_image=image, outcome="promoted",
                      smoke_passed=True)
    for before, image in rollbacks:
        ledger.append("rollback", phase="outcome", stack="prod", image=image, before=before, after=image,
                      prod_image=image, pinned=image, outcome="rolled_back", smoke_passed=True)
    return tuple(ledger.entries())


def test_after_rolling_back_to_the_oldest_release_the_rollback_line_is_na_and_names_no_newer_one_earlier(
        healthy, tmp_path):  # noqa: F811
    # Before: FAIL "a rollback took PROD off every earlier verified release ... the newest, r-bbbb" (newer).
    facts = dataclasses.replace(healthy, images={**healthy.images, "prod": IMG_A},
                                ledger=_promoted_then(tmp_path, (IMG_B, IMG_A)))
    line = _line(facts, "rollback_ready")
    assert line.status == checklist.NA, line.evidence
    assert f"PROD runs its oldest verified release ({IMG_A})" in line.evidence
    assert "newer verified release r-bbbb" in line.evidence and "earlier" not in line.evidence.split(":")[0]


def test_the_first_release_and_a_return_to_the_newer_one_keep_their_verdicts(healthy, tmp_path):  # noqa: F811
    first = Ledger(tmp_path / "one")
    first.append("promotion", phase="outcome", stack="prod", image=IMG_A, prod_image=IMG_A, outcome="promoted",
                 smoke_passed=True)
    facts = dataclasses.replace(healthy, images={**healthy.images, "prod": IMG_A}, ledger=tuple(first.entries()))
    assert _line(facts, "rollback_ready").status == checklist.NA
    back = dataclasses.replace(healthy, ledger=_promoted_then(tmp_path / "two", (IMG_B, IMG_A), (IMG_A, IMG_B)))
    line = _line(back, "rollback_ready")
    assert line.status == checklist.FAIL and f"goldgate rollback --to r-{IMG_A[-4:]}" in line.evidence


# -- golden lines on STAGING's pinned image ---------------------------------------------------------

def test_a_golden_report_of_another_image_passes_neither_golden_line_locally(healthy):  # noqa: F811
    other = {**healthy.golden, "image": IMG_A}
    red = {r.id for r in checklist.run_checks(dataclasses.replace(healthy, golden=other))
           if r.status == checklist.FAIL}
    assert {"golden_all_pass", "golden_latency", "golden_against_staging"} <= red
    line = _line(dataclasses.replace(healthy, golden=other), "golden_all_pass")
    assert f"is for image {IMG_A}, STAGING runs {IMG_B}" in line.evidence


def test_the_cloud_checklist_from_a_checkout_with_another_images_report_fails_the_golden_lines(cloud):  # noqa: F811
    # A fresh checkout reads the committed latest.json, a report of another image than STAGING runs.
    # Before: golden_all_pass and golden_latency passed on it; only golden_against_staging failed.
    path = cloud.reports_dir / "latest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "image": CLOUD_IMG_A}))
    results = cloud.results()
    for check in ("golden_all_pass", "golden_latency", "golden_against_staging"):
        assert results[check].status == checklist.FAIL, (check, results[check].evidence)
    assert f"is for image {CLOUD_IMG_A}" in results["golden_all_pass"].evidence
    assert "goldgate golden staging" in results["golden_latency"].evidence
