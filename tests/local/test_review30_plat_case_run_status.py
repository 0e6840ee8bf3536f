"""Review 30 (plat): `goldgate status prod` names a failed `golden prod --case` run as the run it was.

`goldgate golden prod --case flux-fox` that failed was shown on the SMOKE FAILED line as PROD's "full golden run"
failing there: the operator read that the whole suite had run on PROD and failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from prod_status_support import A, promoted, status

from goldgate.local.state import StackDir
from goldgate.release import ledger as ledger_file
from goldgate.release.ledger import Ledger


def _failed_run(ledger: Ledger, **more: object) -> int:
    return ledger.append("golden", stack="prod", target="local", image=A, passed=False, role="prod",
                         failures=["flux-fox: perceptual_hash: distance 31 > 6"], trigger="test", **more).seq


@pytest.mark.parametrize(("run", "named"), [
    ({"suite": "full", "cases": 1, "only_cases": ["flux-fox"]}, "run of 1 case named with --case"),
    ({"suite": "smoke", "cases": 2, "only_cases": ["flux-fox", "sdxl-lighthouse"]},
     "run of 2 smoke cases named with --case"),
])
def test_a_failed_case_run_on_prod_is_not_called_its_full_golden_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        run: dict[str, object], named: str) -> None:
    monkeypatch.delenv(ledger_file.KEY_ENV, raising=False)
    home = tmp_path / "home"
    ledger = Ledger(home)
    promoted(ledger, A)
    StackDir(home, "prod").pin(A, reason="promotion")
    seq = _failed_run(ledger, **run)
    text, data = status(home, capsys)
    said = data["smoke_failed"]
    assert said and f"is pinned to {A}, whose {named} failed there (ledger #{seq}," in said, said
    assert "full golden run" not in said and "full golden run" not in text, text
    assert "first failure: flux-fox: perceptual_hash" in said
