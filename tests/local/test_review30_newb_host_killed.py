"""Review 30 (newb): after a reboot (every host killed, its state left), `goldgate status` said the host was "killed,
or it crashed: see .../stackhost.stderr.log", and that log was empty: a killed host writes nothing, so the one pointer
status gave led nowhere. It now says that nothing was written there since the host started, and why; a log the host
did write to (a crash's traceback) is still named as the place to look."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from processes import wait_until

from goldgate.cli import main
from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform


def _ended_line(capsys: pytest.CaptureFixture[str], home: Path) -> str:
    capsys.readouterr()
    assert main(["status", "staging", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "staging: down", out
    return next(line for line in out.splitlines() if line.startswith("  not stopped by down")).strip()


def test_status_after_a_killed_host_says_its_log_holds_nothing_and_names_a_crash_log(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    platform = LocalPlatform(home)
    log = home / "stacks" / "staging" / "logs" / "stackhost.stderr.log"
    try:
        ensure_up(platform, "staging")
        host = platform.require_running("staging")["pid"]
        os.kill(host, signal.SIGKILL)  # as a reboot ends it: no word written anywhere
        assert wait_until(lambda: not platform.status("staging").running, 30)
        said = _ended_line(capsys, home)
        assert f"its host (pid {host}) ended without `goldgate down`" in said, said
        assert f"nothing was written to {log} since it started at " in said, said
        assert "SIGKILL, the OOM killer or a reboot" in said, said
        assert "see " not in said, said  # no pointer to a file that says nothing
        # A host that wrote its last words there (a crash's traceback): that log is where to look.
        with log.open("a") as f:
            f.write("Traceback (most recent call last):\nMemoryError\n")
        said = _ended_line(capsys, home)
        assert f"killed, or it crashed: see {log}" in said, said
        assert "`goldgate up staging` starts it again" in said, said
    finally:
        platform.down("staging")
