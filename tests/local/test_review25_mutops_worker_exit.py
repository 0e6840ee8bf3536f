"""A local worker process ends with the status its main gave, a SystemExit's too (the SDK's own exit, a usage
error): the emulator's record of a worker that exited reads it (goldgate status, preflight_failed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_worker_that_exits_through_system_exit_keeps_its_status(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "goldgate.local.worker_process", "--no-such-option"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done
    assert "the following arguments are required: --snapshot" in done.stderr
