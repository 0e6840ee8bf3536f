"""Review 30 (rel2): docs/RUNBOOK.md quotes what the release commands now say where it covers interrupted changes:
`goldgate status prod` after a `rollback --to` cut short ("the rollback to it (ledger #n) did not finish ...
`goldgate rollback` finishes it"), and a lock's refusal of `goldgate promote --check` ("the gate was not judged").
Each quote is taken from the command's own output here, so a reworded message fails this test, not the reader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prod_status_support import B, promoted, status

from goldgate.local.state import StackDir
from goldgate.release import ledger as ledger_file
from goldgate.release.ledger import Ledger
from goldgate.release.lock import StackBusy, StackLock

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "RUNBOOK.md"


def _section(title: str) -> str:
    """The runbook's `## <title>` section, its lines joined as a reader reads them."""
    text = RUNBOOK.read_text(encoding="utf-8")
    body = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return " ".join(body.split())


def test_the_runbook_quotes_status_after_a_rollback_to_cut_short(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(ledger_file.KEY_ENV, raising=False)
    home = tmp_path / "home"
    ledger = Ledger(home)
    promoted(ledger, B)
    StackDir(home, "prod").pin(B, reason="promotion")
    ledger.append("golden", stack="prod", target="local", image=B, suite="smoke", passed=False, role="prod",
                  failures=["flux-fox: completed: status failed"], trigger="test")
    ledger.append("rollback", phase="intent", stack="prod", target="local", image=B, before=B, reason="manual",
                  trigger="test")   # `goldgate rollback --to B`, then Ctrl-C
    said = status(home, capsys)[1]["unverified"]
    quoted = re.search(r"the rollback to it \(ledger #\d+\) did not finish.*?finishes it \(and smokes it\)", said)
    assert quoted, said
    assert re.sub(r"#\d+", "#n", quoted.group(0)) in _section("Rollback")


def test_the_runbook_quotes_a_promote_check_refused_by_a_lock(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with StackLock(home, "local", "staging", "golden", "a full golden run on staging"), \
            pytest.raises(StackBusy) as refused, \
            StackLock(home, "local", "staging", "check", "promote --check", again="goldgate promote --check"):
        pass
    assert "the gate was not judged" in str(refused.value)
    assert '`goldgate promote --check` there ("the gate was not judged"' in _section("A failed promotion")
