"""Evidence the gate reads beyond the report's verdict: a reference image the gate's checkout lacks is never taken
as matched by a report that compared nothing with it (both "missing" would otherwise read as equal); a line appended
to a keyed ledger without the key does not stand in for the authenticated run that wrote the report."""

from __future__ import annotations

from pathlib import Path

from release_support import StandInApi, standin_api
from test_gate_and_lock import NOW, RECORDED, THR, A, Stacks, failed, report

from goldgate.release.gate import ErrorRate, PromotionRefused, evaluate
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate
from goldgate.release.verification import GoldenPaths, run_golden

KEY = b"m2-test-ledger-key-0123456789abcdef"

SQUARE = "1" * 64


def test_a_reference_this_checkout_lacks_is_not_matched_by_a_report_that_compared_nothing_with_it() -> None:
    compared = report(references={"dir": "scripts/golden-tests/references", "sha256": {"square.png": SQUARE}})
    d = evaluate(compared, A, THR, ErrorRate(40, 0, "t"), now=NOW, recorded=RECORDED,
                 references={"square.png": SQUARE, "batch.png": None})
    assert failed(d) == ["report_references_match"]
    assert ("this checkout holds no reference image for 1 of the 2 (batch.png) in scripts/golden-tests/references/local: "
            "create it with `goldgate golden staging --update-references`") in str(PromotionRefused(d))
    whole = evaluate(compared, A, THR, ErrorRate(40, 0, "t"), now=NOW, recorded=RECORDED,
                     references={"square.png": SQUARE})
    assert whole.passed, failed(whole)


def test_a_forged_line_naming_the_reports_sha_does_not_hide_the_authenticated_run_that_wrote_it(
        tmp_path: Path, paths: GoldenPaths) -> None:
    """Under a ledger key the gate takes the authenticated run that wrote the report as its evidence: a line appended
    without the key with the same report_sha256 (for another stack, so it is no later run of this digest) is not
    read in its place."""
    home = tmp_path / "home"
    keyed = Ledger(home, key=KEY)
    with standin_api(StandInApi(image_tag=A)) as api:
        stacks = Stacks(api.url, {"staging": A})
        run = run_golden(stacks, "staging", keyed, paths=paths, poll_s=0.01)
    latest = paths.reports_dir / "latest.json"
    assert check_gate(stacks, keyed, latest)[0].passed
    Ledger(home).append("golden", stack="elsewhere", target="local", image=A, suite="full", passed=False,
                        report=str(run.path), report_sha256=run.sha256)
    decision = check_gate(stacks, keyed, latest)[0]
    assert decision.passed, failed(decision)
    recorded = next(c for c in decision.conditions if c.name == "report_recorded")
    assert recorded.detail == "written by the golden run recorded as ledger #1"
