"""A goldgate command ended by SIGTERM (a cancelled CI job, `kill`) unwinds as Ctrl-C does: one line on stderr and
the exit code a shell gives a terminated process, not a silent death by the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The command is `goldgate status` on an empty home; the signal comes while it runs (from its home check), so the
# test needs no timing. `home` records whether the command's own `finally` ran.
JOB = """
import os, signal, sys
import goldgate.cli as cli

def signalled(args):
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))

cli.check_home = signalled
code = cli.main(["status"])
print("exit", code, "handler", "default" if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else "kept")
sys.exit(code)
"""


def _run(tmp_path: Path, signame: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOLDGATE_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", JOB, signame, str(tmp_path)], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_sigterm_ends_a_command_with_a_line_and_143_and_leaves_no_handler_behind(tmp_path: Path) -> None:
    job = _run(tmp_path, "SIGTERM")
    assert job.returncode != -signal.SIGTERM, "killed outright, with nothing said"
    assert job.returncode == 143, job.stderr
    assert job.stderr.strip().splitlines()[-1] == "goldgate: terminated (SIGTERM)"
    assert job.stdout.strip() == "exit 143 handler default"  # a later SIGTERM kills, as before


def test_ctrl_c_still_ends_a_command_with_130(tmp_path: Path) -> None:
    job = _run(tmp_path, "SIGINT")
    assert job.returncode == 130, job.stderr
    assert job.stderr.strip().splitlines()[-1] == "goldgate: interrupted"
    assert job.stdout.strip() == "exit 130 handler default"
