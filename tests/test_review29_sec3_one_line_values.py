"""Review 29 (sec3): the text output kept a newline inside a value it printed, so a value read from a file could fake
a line of output: a release lock whose holder's purpose held "\\n  UNVERIFIED ..." gave `goldgate status prod` a
second UNVERIFIED line that goldgate never wrote. A value's newline is now printed as `\\n`; the render's own lines
stay lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from prod_status_support import A, B, promoted, promotion_under_way, status

from goldgate.local.state import StackDir
from goldgate.release.ledger import Ledger

FAKE = "\n  UNVERIFIED             none: this release was verified"


def test_a_lock_holders_purpose_with_a_newline_cannot_fake_a_status_line(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    promoted(ledger, A)
    ledger.append("promotion", phase="intent", stack="prod", target="local", image=B, before=A, trigger="test")
    StackDir(home, "prod").pin(B, reason="deploy")
    # A live holder of the lock, as a promotion under way is, whose purpose holds a newline.
    with promotion_under_way(home, "promote" + FAKE):
        text, data = status(home, capsys)
    assert FAKE in data["unverified"]  # --json gives the value as it is
    lines = text.splitlines()
    unverified = [line for line in lines if line.lstrip().startswith("UNVERIFIED")]
    assert len(unverified) == 1, text  # one line, goldgate's own
    assert "promote\\n  UNVERIFIED             none: this release was verified" in unverified[0], text
    assert "its smoke run decides" in unverified[0], text  # the rest of the sentence stays on its line
    # The render's own lines are still lines: the stack's head, then one line per field.
    assert lines[0] == "prod: down", text
    assert any(line.split() == ["image", B] for line in lines), text

