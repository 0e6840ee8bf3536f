"""Review 30 (rel2): a run of the cases `golden --case` names is not the golden suite, and nothing takes it for one.

Its first line said "full suite on staging: 1 case(s)"; a `--case` run naming every case of the suite passed the
promotion gate (`promote --check --report <its dated report>`: "gate would pass"), though it never checked that a case
runs each workflow STAGING serves; and a passing `golden prod --case` after a failed smoke run hid that failure from
`goldgate status prod` (its SMOKE FAILED line reads the ledger's last golden run, `last_golden_run`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prod_status_support import promoted, status
from release_support import StandInApi, standin_api
from test_gate_and_lock import A, Stacks

from goldgate.local.state import StackDir
from goldgate.release import ledger as ledger_file
from goldgate.release.ledger import Ledger, last_golden_run
from goldgate.release.promote import check_gate
from goldgate.release.verification import GoldenPaths, run_golden


def test_a_case_run_says_it_is_the_cases_named_not_the_full_suite(tmp_path: Path, paths: GoldenPaths) -> None:
    said: list[str] = []
    with standin_api(StandInApi(image_tag=A)) as api:
        run = run_golden(Stacks(api.url, {"staging": A}), "staging", Ledger(tmp_path / "home"), paths=paths,
                         poll_s=0.01, only=["square"], progress=said.append)
    assert run.passed
    first = said[0]
    assert not first.startswith("full suite"), first
    assert first.startswith("1 case named with --case on staging, of the full suite's 2 (not the suite"), first
    page = run.html_path.read_text()                       # the HTML report's suite row said "full"
    assert "1 case of the full suite named with --case (square): not the suite" in page


def test_a_case_run_naming_every_case_does_not_open_the_gate(tmp_path: Path, paths: GoldenPaths) -> None:
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A)) as api:
        stacks = Stacks(api.url, {"staging": A})
        run = run_golden(stacks, "staging", ledger, paths=paths, poll_s=0.01, only=["square", "batch"])
        assert run.passed
        decision = check_gate(stacks, ledger, run.path)[0]
    refused = {c.name: c.detail for c in decision.conditions if not c.passed}
    assert "report_passed" in refused, decision.to_dict()
    assert "2 cases named with `--case`" in refused["report_passed"]
    assert "`goldgate golden staging` without --case" in refused["report_passed"]


def _golden(ledger: Ledger, passed: bool, **more: object) -> int:
    return ledger.append("golden", stack="prod", target="local", image=A, suite="smoke", passed=passed,
                         role="prod", failures=[] if passed else ["square: rendered black"], trigger="test",
                         **more).seq


def test_a_passing_case_run_on_prod_leaves_status_smoke_failed_line_standing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(ledger_file.KEY_ENV, raising=False)
    home = tmp_path / "home"
    ledger = Ledger(home)
    promoted(ledger, A)
    StackDir(home, "prod").pin(A, reason="promotion")
    failed = _golden(ledger, passed=False)                 # PROD's smoke run of A failed
    _golden(ledger, passed=True, only_cases=["square"])   # `golden prod --smoke --case square`: one case looked into
    _, data = status(home, capsys)
    assert data["smoke_failed"] and f"whose smoke run failed there (ledger #{failed}," in data["smoke_failed"], data
    found = last_golden_run(home, "prod", A)
    assert found is not None and found["seq"] == failed, found
    later = _golden(ledger, passed=False, only_cases=["square"])       # a failure is one, whatever ran
    assert last_golden_run(home, "prod", A)["seq"] == later
