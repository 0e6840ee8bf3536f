"""An empty (or torn) pin.json of a stack that runs: `status`, `up` and `deploy` each refuse it with advice. The advice
said "pin it again with `goldgate deploy <stack> --image <ref>`", and to move the file aside only "if it is down":
with the stack up, that deploy refused with the very same advice (it reads the pin it replaces), a loop with no way
out in the message. The file is moved aside first, whether the stack runs or not; the deploy then pins again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from goldgate.commands.local import ensure_up
from goldgate.local.platform import REPO, LocalPlatform
from goldgate.local.state import StackDir


def _goldgate(home: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "goldgate.cli", *argv, "--home", str(home)], check=False,
                          capture_output=True, text=True, timeout=180, cwd=REPO)


def _error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done
    return done.stderr.strip().splitlines()[-1]


def test_the_advice_for_an_empty_pin_of_a_running_stack_leads_out(home: Path) -> None:
    platform = LocalPlatform(home)
    served = ensure_up(platform, "staging").image
    d = StackDir(home, "staging")
    try:
        d.pin_file.write_text("")  # what a write an older goldgate made in place left, cut short
        advice = _error(_goldgate(home, "status", "staging"))
        assert advice.startswith(f"goldgate: error: {d.pin_file} is empty"), advice
        deploy = "`goldgate deploy staging --image <ref>`"
        assert deploy in advice, advice
        # The deploy it names cannot read past the file either: the advice says to move it aside first, up or down.
        assert _error(_goldgate(home, "deploy", "staging", "--image", served)) == advice
        assert "Move pin.json aside" in advice and advice.index("Move pin.json aside") < advice.index(deploy), advice

        d.pin_file.rename(d.root / "pin.json.empty")  # as advised: aside, then the deploy
        done = _goldgate(home, "deploy", "staging", "--image", served)
        assert done.returncode == 0, done.stderr
        assert d.pinned_image() == served
        status = platform.status("staging")
        assert status.running and status.image == served and status.pin_not_served is None, status
    finally:
        platform.down("staging")
