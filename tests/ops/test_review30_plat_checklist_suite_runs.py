"""Review 30 (plat): the checklist's "passed golden on STAGING" is a passing run of the whole suite.

A passing `goldgate golden staging --case X` run (one case looked into) or `--smoke` run counted as the golden pass a
promotion needs: a release promoted on such a run (an older gate let a `--case` report through) was shown as
"promoted from STAGING where it passed golden" on three lines of `goldgate checklist`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts
from goldgate.release.ledger import Ledger

IMG = "local/worker@sha256:" + "c" * 64
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _promoted_on(ledger: Ledger, *goldens: dict[str, object]) -> None:
    """A release built, deployed to STAGING, run there by the golden runs `goldens` (each passing), promoted through
    a passing gate, and verified on PROD."""
    ledger.append("build", image=IMG, release_id="r-c")
    ledger.append("deploy", stack="staging", image=IMG)
    for golden in goldens:
        ledger.append("golden", stack="staging", target="local", image=IMG, passed=True, role="staging", failures=[],
                      **golden)
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=IMG,
                           gate={"passed": True})
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", target="local", image=IMG,
                  prod_image=IMG, outcome="promoted", smoke_passed=True)


def _lines(ledger: Ledger) -> dict[str, tuple[str, str]]:
    facts = Facts(stack="staging", now=NOW, ledger=tuple(ledger.entries()), images={"staging": IMG, "prod": IMG})
    return {judge.__name__: judge(facts) for judge in (checklist.golden_before_promote, checklist.prod_same_digest,
                                                       checklist.pipeline_complete)}


def test_a_release_promoted_on_a_case_run_did_not_pass_golden_on_staging(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "home")
    _promoted_on(ledger, {"suite": "full", "cases": 1, "only_cases": ["sdxl-defaults"]})
    for name, (status, evidence) in _lines(ledger).items():
        assert status == checklist.FAIL, (name, evidence)
        assert "`golden --case` or `--smoke` run is not the suite" in evidence, (name, evidence)
    assert "promoted without a passing full golden run on STAGING: " + IMG in _lines(ledger)[
        "golden_before_promote"][1]
    # The full run on STAGING the release needed (here after the fact: the lines read the ledger, not its order).
    ledger.append("golden", stack="staging", target="local", image=IMG, suite="full", cases=6, passed=True,
                  role="staging", failures=[])
    for name, (status, evidence) in _lines(ledger).items():
        assert status == checklist.PASS, (name, evidence)


def test_a_release_promoted_on_a_smoke_run_did_not_pass_golden_on_staging(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "home")
    _promoted_on(ledger, {"suite": "smoke", "cases": 2})
    for name, (status, evidence) in _lines(ledger).items():
        assert status == checklist.FAIL, (name, evidence)
