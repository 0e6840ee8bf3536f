"""Words an operator acts on. `goldgate history` said "`goldgate rollback` finishes an interrupted one" of an
interrupted promotion, where the RUNBOOK and the checklist say the next promote or rollback does; and
`promote --check --retry-rejected` said the digest was "promoted again as the operator asked" though a check
promotes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, invoke, standin_api
from test_promotion_evidence import A, B
from test_review13_a2_prod_verdict import _failed_on_prod_then_passed_staging_again

import goldgate.commands.release as release_commands
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths


def test_history_says_the_next_promote_or_rollback_finishes_an_interrupted_change(
        capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    lost = ledger.append("promotion", phase="intent", stack="prod", image=B, before=A, trigger="user:t")
    code, out, _ = invoke(capsys, "history", "--home", str(tmp_path))
    assert code == 0
    assert (f"unfinished: #{lost.seq} recorded an intent and no outcome (its command is still running, or was "
            "interrupted): the next `goldgate promote` or `goldgate rollback` records an interrupted one as "
            "interrupted and says what PROD was left on; `goldgate rollback` undoes it") in out, out


def test_a_gate_check_with_retry_rejected_does_not_say_it_promoted(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture, tmp_path: Path,
                                                                   paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = _failed_on_prod_then_passed_staging_again(home, paths, ledger, api)
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        code, out, err = invoke(capsys, "promote", "--check", "--retry-rejected", "--home", str(home),
                                "--target", "local", "--cases-dir", str(paths.cases_dir),
                                "--references-dir", str(paths.references_dir), "--reports-dir", str(paths.reports_dir))
    assert code == 0, out + err
    (line,) = [ln for ln in out.splitlines() if ln.strip().startswith("prod_verdict")]
    assert "ok" in line.split() and "--retry-rejected" in line, line
    assert "promoted again" not in line and "the operator asked to retry it on prod" in line, line
    assert out.rstrip().endswith("gate would pass")
    assert target.deploys == [] and target.pins["prod"] == A
