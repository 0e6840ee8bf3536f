"""Why the gate's `report_references_match` refused, with the remedy that fits. Before, a reference the checkout does
not hold at all (b.png never committed) was reported as "did not compare 1 of the 2 reference images (b.png): not
compared (its case produced no image to compare)", sending the operator to debug a render when the fix is to create
and commit the reference. Now: a reference the checkout lacks, one the report compared nothing with (its case was not
in that run, or rendered nothing), and one compared with other files each get their own words."""

from __future__ import annotations

from test_gate_and_lock import NOW, RECORDED, THR, report
from test_promotion_partial_failure import A

from goldgate.release.gate import ErrorRate, evaluate

SHA_A, SHA_B, SHA_OTHER = "a" * 64, "b" * 64, "c" * 64


def _detail(compared: dict[str, str], checkout: dict[str, str | None]) -> tuple[bool, str]:
    ran = report(references={"dir": "scripts/golden-tests/references", "sha256": compared})
    decision = evaluate(ran, A, THR, ErrorRate(40, 1, "t"), now=NOW, recorded=RECORDED, references=checkout)
    (cond,) = [c for c in decision.conditions if c.name == "report_references_match"]
    return cond.passed, cond.detail


def test_a_reference_the_checkout_lacks_says_to_create_and_commit_it() -> None:
    # The run's case rendered nothing for b.png either: the checkout's missing file is what to fix first.
    passed, detail = _detail({"a.png": SHA_A}, {"a.png": SHA_A, "b.png": None})
    assert not passed
    assert "this checkout holds no reference image for 1 of the 2 (b.png)" in detail, detail
    assert "goldgate golden staging --update-references" in detail and "commit" in detail
    assert "produced no image" not in detail and "not compared" not in detail


def test_a_reference_the_checkout_lacks_but_the_run_compared_is_not_called_another_directory() -> None:
    passed, detail = _detail({"a.png": SHA_A, "b.png": SHA_B}, {"a.png": SHA_A, "b.png": None})
    assert not passed
    assert "this checkout holds no reference image for 1 of the 2 (b.png)" in detail, detail
    assert "other files" not in detail


def test_a_reference_the_report_compared_nothing_with_names_the_run_not_the_checkout() -> None:
    passed, detail = _detail({"a.png": SHA_A}, {"a.png": SHA_A, "b.png": SHA_B})
    assert not passed
    assert detail.startswith("the report compared no render with 1 of the 2 reference images (b.png): its case was "
                             "not in that run, or produced no image"), detail
    assert "did not compare" not in detail and "not compared" not in detail and "--update-references" not in detail


def test_each_cause_is_named_once_when_all_three_occur() -> None:
    checkout = {"a.png": SHA_A, "b.png": SHA_B, "c.png": None}
    passed, detail = _detail({"a.png": SHA_OTHER}, checkout)
    assert not passed
    assert "compared 1 of the 3 reference images (a.png) with other files" in detail, detail
    assert "compared no render with 1 of the 3 reference images (b.png)" in detail
    assert "holds no reference image for 1 of the 3 (c.png)" in detail
    assert detail.endswith("then run `goldgate golden staging` against the committed references")
