"""What the operator reads after a rollback or a refused gate says what happened. `rollback --to` a release promoted
after the one PROD ran said "PROD rolled back"; finishing an interrupted rollback printed "A -> A"; and a golden run
whose cases produced no image was said to have "compared 2 of the 2 reference images with other files", which sent
the operator looking for a references directory that was never used."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, invoke, standin_api
from test_prod_verdict_survives_a_lost_runner import _rollback_lost_past_its_pin
from test_promotion_evidence import A, B, _released
from test_promotion_partial_failure import Recorded

import goldgate.commands.release as release_commands
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths, run_golden


def _cli_rollback(capsys: pytest.CaptureFixture, home: Path, paths: GoldenPaths, *extra: str) -> tuple[int, str, str]:
    return invoke(capsys, "rollback", "--home", str(home), "--target", "local", "--cases-dir", str(paths.cases_dir),
                  "--references-dir", str(paths.references_dir), "--reports-dir", str(paths.reports_dir), *extra)


def test_rollback_to_a_newer_release_says_prod_moved_forward(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture, tmp_path: Path,
                                                             paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _released(target, ledger, home, paths, A, B)
        assert rollback(target, ledger, home, paths=paths).image == A
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        code, out, err = _cli_rollback(capsys, home, paths, "--to", B)
    assert code == 0, err
    assert out.strip() == f"PROD moved forward to a newer release: {A} -> {B} (smoke passed)"
    assert target.pins["prod"] == B


def test_finishing_an_interrupted_rollback_does_not_print_a_move_to_the_same_image(monkeypatch: pytest.MonkeyPatch,
                                                                                  capsys: pytest.CaptureFixture,
                                                                                  tmp_path: Path,
                                                                                  paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A)) as api:
        target = _rollback_lost_past_its_pin(api, Ledger(home), home, paths)
        target.lose = []
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        code, out, err = _cli_rollback(capsys, home, paths)
    assert code == 0, err
    assert out.strip() == f"PROD redeployed {A}, which it already ran (smoke passed)"


def test_a_run_whose_cases_produced_no_image_is_not_said_to_have_compared_other_references(
        tmp_path: Path, paths: GoldenPaths) -> None:
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A, fail_workflows={"wf-a", "wf-b"})) as api:
        target = Recorded(api, {"staging": A})
        run = run_golden(target, "staging", ledger, paths=paths, poll_s=0.01)
        assert not run.passed
        decision = check_gate(target, ledger, run.path, cases_dir=paths.cases_dir,
                              references_dir=paths.references_dir)[0]
    (detail,) = [c.detail for c in decision.conditions if c.name == "report_references_match"]
    assert detail.startswith("the report compared no render with 2 of the 2 reference images (batch.png, "
                             "square.png): their cases were not in that run, or produced no image"), detail
    assert "with other files" not in detail


def test_history_flags_a_change_that_recorded_no_outcome(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    done = ledger.append("promotion", phase="intent", stack="prod", image=A, before=None, trigger="user:t")
    ledger.append("promotion", phase="outcome", intent_seq=done.seq, stack="prod", image=A, prod_image=A,
                  outcome="promoted", trigger="user:t")
    lost = ledger.append("promotion", phase="intent", stack="prod", image=B, before=A, trigger="user:t")
    code, out, _ = invoke(capsys, "history", "--home", str(tmp_path))
    rows = {line.split()[0]: line.split() for line in out.splitlines() if " promotion " in line}
    assert code == 0 and rows[str(lost.seq)][5] == "UNFINISHED" and rows[str(done.seq)][5] != "UNFINISHED", out
    assert f"unfinished: #{lost.seq} recorded an intent and no outcome" in out
