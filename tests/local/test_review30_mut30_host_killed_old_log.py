"""Review 30 mutation audit (mut30): status after a killed host judges its stderr log by this run only. The log is
appended to by every start, so a traceback an earlier run left there is not this host's last words: status says
nothing was written since it started, not "see <log>" (which shows an old crash as this one's cause). And a log
that is gone (removed by hand, a cleaned logs dir) still gets an answer, not a traceback."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from processes import wait_until
from test_review30_newb_host_killed import _ended_line

from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform


def test_an_earlier_runs_traceback_is_not_named_as_this_hosts_end(home: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    platform = LocalPlatform(home)
    log = home / "stacks" / "staging" / "logs" / "stackhost.stderr.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("Traceback (most recent call last):\nMemoryError\n")  # an earlier run's crash
    os.utime(log, (1_700_000_000, 1_700_000_000))
    try:
        ensure_up(platform, "staging")
        host = platform.require_running("staging")["pid"]
        os.kill(host, signal.SIGKILL)
        assert wait_until(lambda: not platform.status("staging").running, 30)
        said = _ended_line(capsys, home)
        assert f"nothing was written to {log} since it started at " in said, said
        assert "see " not in said, said
        log.unlink()  # a logs dir cleaned by hand: status still answers
        said = _ended_line(capsys, home)
        assert f"nothing was written to {log} since it started at " in said, said
    finally:
        platform.down("staging")
