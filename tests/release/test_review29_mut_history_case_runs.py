"""Review 29 (mut): `goldgate history` says a golden run of named cases (`golden --case`) ran those cases, never the
full suite: it ran from the suite's own directory, which history otherwise calls "full" (a run the gate refuses)."""

from __future__ import annotations

from pathlib import Path

from goldgate import cli
from goldgate.release.cases import shown_dir
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths

IMAGE = "local/worker@sha256:" + "e" * 64


def test_history_names_a_case_run_by_its_cases_not_as_the_full_suite(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)
    home = tmp_path / "home"
    ledger = Ledger(home)
    suite_dir = shown_dir(GoldenPaths().cases_dir)
    ledger.append("golden", stack="staging", image=IMAGE, suite="full", passed=True, cases=1, cases_dir=suite_dir,
                  only_cases=["square"], trigger="user:test")
    ledger.append("golden", stack="staging", image=IMAGE, suite="smoke", passed=True, cases=2, cases_dir=suite_dir,
                  only_cases=["square", "batch"], trigger="user:test")
    assert cli.main(["history", "--home", str(home)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "golden" in line]
    assert len(rows) == 2, rows
    assert "1 case (--case)" in rows[0] and " full " not in rows[0], rows[0]
    assert "2 smoke cases (--case)" in rows[1], rows[1]
