"""Review 30 (loc2): the checklist's golden lines judge a golden run's cases as promote's gate does.

A passing `goldgate golden staging --cases-dir <a subset>` run is recorded as suite "full", and the checklist counted it
as the full suite: a release promoted on it was "promoted from STAGING where it passed golden" on three lines, and its
latest.json showed "all 2 golden cases passed", while the gate (`report_cases`) refuses that very run by the case
digests it recorded. The lines now take the gate's verdict, in its words."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, read_golden_suite
from goldgate.release.ledger import Ledger

IMG = "local/worker@sha256:" + "d" * 64
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SUBSET = ("flux-fox", "sdxl-defaults")   # a case of each shipped workflow: a run over them alone covers both
LEDGER_LINES = (checklist.golden_before_promote, checklist.prod_same_digest, checklist.pipeline_complete)


def _promoted_on(ledger: Ledger, cases_dir: str, suite_cases: dict[str, str]) -> None:
    """A release built, deployed to STAGING, passed there by one golden run recorded as suite "full" over
    `suite_cases` from `cases_dir`, promoted through a passing gate, and verified on PROD."""
    ledger.append("build", image=IMG, release_id="r-d")
    ledger.append("deploy", stack="staging", image=IMG)
    _passing_run(ledger, cases_dir, suite_cases)
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=IMG,
                           gate={"passed": True})
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", target="local", image=IMG,
                  prod_image=IMG, outcome="promoted", smoke_passed=True)


def _passing_run(ledger: Ledger, cases_dir: str, suite_cases: dict[str, str]) -> int:
    return ledger.append("golden", stack="staging", target="local", image=IMG, suite="full", passed=True,
                         role="staging", failures=[], cases=len(suite_cases), cases_dir=cases_dir,
                         suite_cases=suite_cases).seq


def _lines(ledger: Ledger) -> dict[str, tuple[str, str]]:
    suite, error = read_golden_suite()
    assert suite is not None, error
    facts = Facts(stack="staging", now=NOW, ledger=tuple(ledger.entries()), images={"staging": IMG, "prod": IMG},
                  golden_suite=suite)
    return {judge.__name__: judge(facts) for judge in LEDGER_LINES}


def test_a_release_promoted_on_a_run_over_a_subset_of_the_cases_did_not_pass_golden(tmp_path: Path) -> None:
    suite, _ = read_golden_suite()
    assert suite is not None and len(suite.definitions) > len(SUBSET)
    ledger = Ledger(tmp_path / "home")
    _promoted_on(ledger, str(tmp_path / "subset"), {case: suite.definitions[case] for case in SUBSET})
    missing = sorted(set(suite.definitions) - set(SUBSET))
    for name, (status, evidence) in _lines(ledger).items():
        assert status == checklist.FAIL, (name, evidence)   # before: pass, "where it passed golden"
        assert (f"ran {len(SUBSET)} of the {len(suite.definitions)} cases of scripts/golden-tests/cases (missing: "
                f"{', '.join(missing[:5])}") in evidence, (name, evidence)
        assert "run `goldgate golden staging` over every case of it" in evidence, (name, evidence)
    # The whole suite, run from another directory with each case as the checkout defines it: what the gate passes.
    _passing_run(ledger, str(tmp_path / "copy"), dict(suite.definitions))
    for name, (status, evidence) in _lines(ledger).items():
        assert status == checklist.PASS, (name, evidence)


def test_a_copy_of_the_suite_with_a_case_defined_otherwise_did_not_pass_golden(tmp_path: Path) -> None:
    suite, _ = read_golden_suite()
    assert suite is not None
    loosened = {**suite.definitions, "flux-fox": "0" * 64}   # its limits changed in the copy the run read
    ledger = Ledger(tmp_path / "home")
    _promoted_on(ledger, str(tmp_path / "copy"), loosened)
    for name, (status, evidence) in _lines(ledger).items():
        assert status == checklist.FAIL, (name, evidence)
        assert "ran flux-fox as other definitions than scripts/golden-tests/cases holds" in evidence, (name, evidence)


def test_a_run_of_the_checkouts_own_suite_stays_a_pass_when_a_case_is_added_later(tmp_path: Path) -> None:
    # History: a release passed the suite as it stood; a case added since asks the next promotion for a new run,
    # and does not turn every past release red.
    suite, _ = read_golden_suite()
    assert suite is not None
    before = {case: sha for case, sha in suite.definitions.items() if case != "sdxl-portrait"}
    ledger = Ledger(tmp_path / "home")
    _promoted_on(ledger, suite.where, before)
    for name, (status, evidence) in _lines(ledger).items():
        assert status == checklist.PASS, (name, evidence)


def test_the_suite_that_cannot_be_read_is_named_not_taken_for_a_pass(tmp_path: Path) -> None:
    suite, _ = read_golden_suite()
    assert suite is not None
    ledger = Ledger(tmp_path / "home")
    _promoted_on(ledger, suite.where, dict(suite.definitions))
    facts = Facts(stack="staging", now=NOW, ledger=tuple(ledger.entries()), images={"staging": IMG, "prod": IMG},
                  golden_suite_error="golden cases: scripts/golden-tests/cases/x.yaml: not YAML")
    for judge in LEDGER_LINES:
        status, evidence = judge(facts)
        assert status == checklist.FAIL and "golden cases: scripts/golden-tests/cases/x.yaml: not YAML" in evidence, \
            (judge.__name__, evidence)
    assert all(judge(replace(facts, golden_suite_error=None, golden_suite=suite))[0] == checklist.PASS
               for judge in LEDGER_LINES)
