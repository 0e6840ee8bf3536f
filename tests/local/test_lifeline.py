"""A child run under a lifeline ends when its parent dies, however it dies, even if it ignores SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ci_policy import needs
from processes import kill_everything_naming, processes_naming, wait_until

from goldgate.local.lifeline import TERM_GRACE_S

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

# A parent that starts one child under its lifeline, prints the child's pid, and waits to be killed.
PARENT = """
import os, subprocess, sys, time
from goldgate.local.lifeline import Lifeline
line = Lifeline()
child = subprocess.Popen([sys.executable, "-m", "goldgate.local.lifeline", "stubborn", sys.argv[1]],
                         env={**os.environ, **line.child_env()}, pass_fds=line.pass_fds)
print(child.pid, flush=True)
time.sleep(600)
"""

# A child that hangs at shutdown: it ignores SIGTERM and says when it does.
STUBBORN = """
import signal, sys, time
from pathlib import Path
signal.signal(signal.SIGTERM, signal.SIG_IGN)
Path(sys.argv[1]).write_text("ignoring SIGTERM")
while True:
    time.sleep(60)
"""


def test_a_child_that_ignores_sigterm_still_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    (tmp_path / "stubborn.py").write_text(STUBBORN)
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(ready)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert wait_until(ready.exists, 30), "the child never started"
        assert child in processes_naming(str(tmp_path))

        parent.kill()
        parent.wait()

        assert wait_until(lambda: child not in processes_naming(str(tmp_path)), TERM_GRACE_S + 10)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
        kill_everything_naming(str(tmp_path))
