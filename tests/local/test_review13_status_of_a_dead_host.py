"""`goldgate status` of a stack whose host died (killed, the OOM killer): it said "staging: down", as for a stack
`goldgate down` stopped, with nothing about the jobs the dead host had queued (no webhook will come for them). It
says now that the stack was not stopped by `down`, the host's pid and log, and that `goldgate up` starts it and names
those jobs; a stack stopped by `down` says no such thing."""

from __future__ import annotations

import json
import os
import signal

from processes import wait_until

from goldgate.cli import main
from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform


def _status(capsys, home, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["status", "staging", "--home", str(home), *extra])
    return code, capsys.readouterr().out


def test_status_of_a_stack_whose_host_died_says_it_was_not_stopped_by_down(home, capsys) -> None:
    platform = LocalPlatform(home)
    try:
        ensure_up(platform, "staging")
        host = platform.require_running("staging")["pid"]
        os.kill(host, signal.SIGKILL)
        assert wait_until(lambda: not platform.status("staging").running, 30)
        code, out = _status(capsys, home)
        assert code == 0
        lines = out.splitlines()
        assert lines[0] == "staging: down", out
        said = lines[1]
        assert said.startswith(f"  not stopped by down    its host (pid {host}) ended without `goldgate down`"), out
        assert str(home / "stacks" / "staging" / "logs" / "stackhost.stderr.log") in said
        assert "`goldgate up staging` starts it again" in said
        code, out = _status(capsys, home, "--json")
        shown = json.loads(out)
        assert code == 0 and shown["running"] is False and f"pid {host}" in shown["ended"]
    finally:
        platform.down("staging")
    # Stopped by `down`: plainly down.
    code, out = _status(capsys, home)
    assert code == 0 and out.splitlines()[0] == "staging: down" and "not stopped by down" not in out
    assert json.loads(_status(capsys, home, "--json")[1])["ended"] is None
