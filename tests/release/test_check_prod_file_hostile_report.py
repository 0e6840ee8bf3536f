"""`goldgate check-prod-file --report` reads the report the way `goldgate promote` does: bounded, and without waiting
for a pipe's writer. A device that never ends or a named pipe nobody writes is one error line and a non-zero exit,
not a MemoryError traceback after eating the machine's memory, nor a job step that hangs until its timeout."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from ci_policy import require
from test_main_pins import SecondPush


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def _check_prod_file(second: SecondPush, report: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "goldgate.cli", "check-prod-file", "--main-file", str(second.mains),
                           "--stack-file", str(second.ours), "--report", report, "--home", str(second.home)],
                          capture_output=True, text=True, check=False, timeout=60, preexec_fn=_limit_memory)


def test_a_report_that_never_ends_is_refused_in_one_line(tmp_path: Path) -> None:
    require(Path("/dev/zero").exists(), "/dev/zero")
    second = SecondPush(tmp_path)   # main's PROD file differs from this checkout's: the report decides
    proc = _check_prod_file(second, "/dev/zero")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("goldgate: error: /dev/zero is larger than 20000000 bytes")
    assert "nothing was changed" in proc.stderr


def test_a_report_that_is_a_pipe_nobody_writes_is_refused_not_waited_on(tmp_path: Path) -> None:
    require(hasattr(os, "mkfifo"), "named pipes (os.mkfifo)")
    second = SecondPush(tmp_path)
    fifo = tmp_path / "latest.json"
    os.mkfifo(fifo)
    proc = _check_prod_file(second, str(fifo))   # a check that waited for a writer would run into the timeout
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "no golden run in the ledger wrote" in proc.stderr
