"""Review 30 (loc2): `goldgate status prod` labels PROD's failed golden run as the run it was.

A failed `goldgate golden prod --case flux-fox` run was shown on a line labelled SMOKE FAILED, whose sentence said "whose
run of 1 case named with --case failed there": the label told the operator a smoke run had failed on PROD. The label
now fits the run (a smoke run, a run of named cases, a full run); --json keeps `smoke_failed` and adds `failed_run`."""

from __future__ import annotations

from pathlib import Path

import pytest
from prod_status_support import A, promoted, status

from goldgate.local.state import StackDir
from goldgate.release import ledger as ledger_file
from goldgate.release.ledger import Ledger


@pytest.mark.parametrize(("run", "kind", "label"), [
    ({"suite": "full", "cases": 1, "only_cases": ["flux-fox"]}, "case", "CASE RUN FAILED"),
    ({"suite": "smoke", "cases": 1, "only_cases": ["flux-fox"]}, "case", "CASE RUN FAILED"),
    ({"suite": "smoke", "cases": 2}, "smoke", "SMOKE FAILED"),
    ({"suite": "full", "cases": 6}, "full", "FULL RUN FAILED"),
])
def test_the_failed_run_line_of_prod_is_labelled_as_the_run_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        run: dict[str, object], kind: str, label: str) -> None:
    monkeypatch.delenv(ledger_file.KEY_ENV, raising=False)
    home = tmp_path / "home"
    ledger = Ledger(home)
    promoted(ledger, A)
    StackDir(home, "prod").pin(A, reason="promotion")
    ledger.append("golden", stack="prod", target="local", image=A, passed=False, role="prod",
                  failures=["flux-fox: perceptual_hash: distance 31 > 6"], trigger="test", **run)
    text, data = status(home, capsys)
    said = data["smoke_failed"]   # the key scripts read stays as it was
    assert said and f"is pinned to {A}, whose " in said, data
    rows = [line.strip() for line in text.splitlines() if said in line]
    assert rows == [f"{label:<22} {said}"], text   # before: SMOKE FAILED for a --case run (and a full one)
    assert data["failed_run"] == kind, data


def test_a_prod_with_no_failed_run_has_no_failed_run_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(ledger_file.KEY_ENV, raising=False)
    home = tmp_path / "home"
    promoted(Ledger(home), A)
    StackDir(home, "prod").pin(A, reason="promotion")
    text, data = status(home, capsys)
    assert data["smoke_failed"] is None and data["failed_run"] is None, data
    assert "FAILED" not in text, text
