"""Review 29 (sec3): the text output kept a newline inside a value it printed, so a value read from a file could fake
a line of output: a release lock whose holder's purpose held "\\n  UNVERIFIED ..." gave `goldgate status prod` a
second UNVERIFIED line that goldgate never wrote. A value's newline is now printed as `\\n`; the render's own lines
stay lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.local.state import StackDir
from goldgate.release.ledger import Ledger

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
FAKE = "\n  UNVERIFIED             none: this release was verified"
HOLD = ("import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); "
        "time.sleep(60)")


def _promoted(ledger: Ledger, image: str) -> None:
    """What a promotion of `image` to PROD whose smoke cases passed leaves in the ledger."""
    ledger.append("golden", stack="staging", target="local", image=image, suite="full", passed=True, role="staging",
                  failures=[], trigger="test")
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=image, before=None,
                           trigger="test")
    ledger.append("golden", stack="prod", target="local", image=image, suite="smoke", passed=True, role="prod",
                  failures=[], trigger="test")
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", target="local", image=image,
                  before=None, after=image, pinned=image, prod_image=image, outcome="promoted", trigger="test")


def test_a_lock_holders_purpose_with_a_newline_cannot_fake_a_status_line(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    _promoted(ledger, A)
    ledger.append("promotion", phase="intent", stack="prod", target="local", image=B, before=A, trigger="test")
    StackDir(home, "prod").pin(B, reason="deploy")
    lock = home / "release.lock"
    # A live holder of the lock, as a promotion under way is: its process holds the file's flock.
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        lock.write_text(json.dumps({"pid": holder.pid, "purpose": "promote" + FAKE, "kind": "change",
                                    "command": "goldgate promote", "since": "2026-12-01T00:00:00Z"}))
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert main(["status", "prod", "--home", str(home)]) == 0
        text = capsys.readouterr().out
        assert main(["status", "prod", "--home", str(home), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
    finally:
        holder.kill()
        holder.wait()
    assert FAKE in data["unverified"]  # --json gives the value as it is
    lines = text.splitlines()
    unverified = [line for line in lines if line.lstrip().startswith("UNVERIFIED")]
    assert len(unverified) == 1, text  # one line, goldgate's own
    assert "promote\\n  UNVERIFIED             none: this release was verified" in unverified[0], text
    assert "its smoke run decides" in unverified[0], text  # the rest of the sentence stays on its line
    # The render's own lines are still lines: the stack's head, then one line per field.
    assert lines[0] == "prod: down", text
    assert any(line.split() == ["image", B] for line in lines), text

