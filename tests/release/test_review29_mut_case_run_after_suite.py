"""Review 29 (mut): a passing run of named cases (`golden --case`, one case looked into) after a passing full run does
not supersede that run: the gate still passes on its report."""

from __future__ import annotations

from pathlib import Path

from release_support import StandInApi, standin_api
from test_gate_and_lock import A, Stacks

from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate
from goldgate.release.verification import GoldenPaths, run_golden


def _failed(decision) -> list[str]:
    return [c.name for c in decision.conditions if not c.passed]


def test_a_passing_case_run_leaves_the_full_runs_verdict_standing(tmp_path: Path, paths: GoldenPaths) -> None:
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A)) as api:
        stacks = Stacks(api.url, {"staging": A})
        full = run_golden(stacks, "staging", ledger, paths=paths, poll_s=0.01)
        assert full.passed
        assert run_golden(stacks, "staging", ledger, paths=paths, poll_s=0.01, only=["square"]).passed
        assert ledger.entries()[-1].get("only_cases") == ["square"]
        decision = check_gate(stacks, ledger, full.path)[0]
    assert _failed(decision) == [], decision.to_dict()
