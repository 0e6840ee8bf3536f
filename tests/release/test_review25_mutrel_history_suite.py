"""`goldgate history` names a golden run's suite: a run of the golden suite itself (which records its cases_dir, the
default one) is "full" or "smoke", and only a run over another directory's cases says which cases it ran."""

from __future__ import annotations

from pathlib import Path

from goldgate import cli
from goldgate.release.cases import shown_dir
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths

IMAGE = "local/worker@sha256:" + "d" * 64


def test_history_calls_a_run_of_the_golden_suite_full_and_a_run_of_other_cases_by_their_directory(
        tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)
    home = tmp_path / "home"
    ledger = Ledger(home)
    ledger.append("golden", stack="staging", image=IMAGE, suite="full", passed=True, cases=12,
                  cases_dir=shown_dir(GoldenPaths().cases_dir), trigger="user:test")
    ledger.append("golden", stack="staging", image=IMAGE, suite="full", passed=True, cases=1,
                  cases_dir="/tmp/one-case", trigger="user:test")
    assert cli.main(["history", "--home", str(home)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "golden" in line]
    assert len(rows) == 2, rows
    assert " full " in rows[0] and "cases of" not in rows[0], rows[0]
    assert "1 case of /tmp/one-case" in rows[1], rows[1]
