"""`goldgate down all` when stacks/local.yaml cannot be read at all (broken in an edit while the stacks ran): it
failed as a whole and left every stack serving. It stops each stack of the home whose host runs, and says what is
wrong with the file."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
from stackfiles import stacks_file

from goldgate.commands import local as local_commands
from goldgate.local.platform import LocalPlatform

STACK = "staging"


def _gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped by this test process, `up`'s parent, counts as gone)."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_down_all_stops_the_running_stacks_when_the_stacks_file_cannot_be_read(
        home: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    platform = LocalPlatform(home, stacks_file(tmp_path))
    platform.up(STACK)
    host = platform.require_running(STACK)["pid"]
    good = platform.stacks_file.read_text()
    platform.stacks_file.write_text("stacks:\n  staging: [unclosed\n")  # an edit half done
    monkeypatch.setattr(local_commands, "_platform", lambda _args: platform)
    try:
        code = local_commands.cmd_down(argparse.Namespace(stack="all", home=str(home)))
    finally:
        platform.stacks_file.write_text(good)
        if not _gone(host):
            platform.down(STACK)
            pytest.fail(f"`down all` left the {STACK} host (pid {host}) running")
    out, err = capsys.readouterr()
    assert code == 0
    assert out.strip().endswith(f"down: {STACK}")
    assert f"{platform.stacks_file} is not valid YAML" in err  # the file's problem, named
    assert f"stopping the stacks of {home} whose host runs: {STACK}" in err
    assert platform.status(STACK).running is False
